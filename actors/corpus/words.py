"""Word lists of the built-in English grammar (actors/corpus/grammar.py), each ordered roughly from common to rare.

Written for this project; British spelling throughout. Notation, one entry per whitespace-separated item:
nouns "singular" or "singular/plural" (regular plurals follow from the rule in grammar.py); verbs "base",
"base/past" or "base/past/third-person-singular" (an irregular form given once applies to every list the verb is in);
everything else is a plain word.
"""

# ---------------------------------------------------------------- nouns: count nouns
PEOPLE = """
man/men woman/women child/children boy girl friend teacher doctor farmer mother father brother sister baby king
queen student neighbour driver worker soldier nurse cook son daughter uncle aunt wife/wives husband grandmother
grandfather prince princess stranger visitor artist writer player singer dancer painter baker butcher captain pilot
sailor fisherman/fishermen hunter guard officer policeman/policemen judge lawyer scientist engineer pupil lady
gentleman/gentlemen priest manager clerk waiter waitress shopkeeper customer guest owner boss chief leader president
minister mayor teenager adult cousin nephew niece grandson granddaughter twin partner traveller tourist passenger
poet actor actress musician pianist drummer photographer reporter journalist editor author librarian professor tutor
coach athlete runner swimmer climber champion winner hero/heroes giant witch wizard knight servant maid gardener
carpenter plumber builder mechanic tailor barber hairdresser dentist surgeon chemist banker merchant trader seller
buyer shepherd miner pirate thief/thieves robber burglar prisoner detective spy general sergeant ranger explorer
inventor designer architect chef nanny secretary cashier accountant researcher volunteer resident citizen villager
peasant landlord tenant emperor empress duke duchess lord monk nun bishop beggar orphan widow bride groom messenger
postman/postmen firefighter lifeguard referee goalkeeper rider cyclist jockey magician clown juggler acrobat sculptor
novelist historian philosopher astronaut sheriff cowboy midwife/midwives patient classmate colleague enemy rival
opponent companion guide elder infant toddler kid expert beginner member fan reader speaker listener host fool genius
salesman/salesmen milkman/milkmen craftsman/craftsmen warrior hermit housekeeper cleaner porter janitor
watchman/watchmen blacksmith potter weaver jeweller florist grocer brewer miller innkeeper squire scholar headmaster
headmistress official diplomat ambassador governor commander admiral archer comedian storyteller celebrity
millionaire pilgrim settler
"""

ANIMALS = """
dog cat horse cow bird fish/fish mouse/mice sheep/sheep pig chicken duck rabbit goat lion tiger bear wolf/wolves fox
monkey elephant snake frog owl eagle deer/deer goose/geese hen donkey camel zebra giraffe kangaroo panda penguin
dolphin whale shark octopus crab spider bee ant butterfly beetle worm snail squirrel hedgehog badger otter beaver bat
crow parrot pigeon sparrow robin swan turkey peacock ostrich seal crocodile lizard turtle tortoise toad hamster puppy
kitten calf/calves lamb foal pony bull ox/oxen rooster leopard cheetah gorilla chimpanzee rat mole weasel raccoon
hare hawk falcon vulture heron seagull moth wasp grasshopper caterpillar ladybird dragonfly jellyfish/jellyfish
lobster eel mule llama reindeer/reindeer woodpecker nightingale blackbird magpie unicorn dragon goldfish/goldfish
buffalo/buffaloes hippo rhino koala flamingo pelican stork jaguar panther hyena baboon ferret stag pheasant puffin
kingfisher walrus mosquito/mosquitoes fly hornet oyster slug tadpole cub piglet duckling chick bunny
"""

OBJECTS = """
book box bag ball cup plate bowl spoon fork knife/knives key door window table chair bed lamp clock watch phone
letter card pen pencil picture photo map hat coat shoe sock shirt dress skirt jacket scarf/scarves glove ring
necklace button umbrella basket bucket bottle jar kettle pot pan tray candle toy doll kite drum guitar piano violin
trumpet flute whistle bell rope chain wheel car bus truck bicycle boat ship train plane cart wagon tractor rocket
ladder hammer nail axe shovel spade rake broom brush comb mirror towel blanket pillow curtain carpet rug sofa desk
shelf/shelves drawer cupboard fridge oven stove sink fence gate brick stone rock pebble shell feather leaf/leaves
flower rose tree seed branch stick envelope stamp coin ticket wallet purse suitcase backpack tent torch battery
camera computer laptop screen keyboard radio television newspaper magazine diary notebook dictionary novel parcel
package gift present prize medal trophy crown sword shield arrow spear helmet flag banner sign poster ribbon balloon
puzzle needle thread net hook rod lantern lock chest trunk crate barrel sack jug mug glass teapot saucer napkin
cushion mattress stool bench statue painting drawing vase jewel diamond pearl crystal magnet compass telescope
microscope calculator ruler eraser crayon calendar lorry van taxi ambulance motorbike scooter helicopter submarine
canoe raft yacht sled boot sandal slipper belt tie sweater cap apron uniform costume pocket collar mask wig badge
brooch earring bracelet pendant locket ladle whisk sieve saucepan toaster freezer lid cork straw tap bin cloth sponge
mop drill chisel spanner screwdriver plank pole post hose wheelbarrow trowel armchair couch wardrobe bookcase sheet
quilt shutter doorbell switch plug cable wire bulb fan heater radiator chimney handle knob frame photograph portrait
alarm folder pin clip sticker label scroll page blackboard globe atlas textbook harp cello trombone saxophone
clarinet horn banjo marble puppet rattle skateboard swing slide block bead domino/dominoes robot racket hoop skate
paddle oar sail anchor mast passport postcard souvenir pipe cane crutch wheelchair bandage pill thermometer twig
acorn cone petal thorn root log icicle snowball snowman/snowmen bone nest web hive pillar column arch tram carriage
caravan trailer barge ferry kayak spaceship jeep bonnet hood cloak robe gown shawl blouse vest tunic waistcoat
overcoat raincoat mitten handkerchief handbag tub carton tin flask pouch bundle cage dagger cannon receipt cheque
leaflet menu certificate sculpture sketch scarecrow fountain
pitcher cauldron wand potion hammock deckchair parasol snorkel wetsuit swimsuit nightgown tracksuit cardigan poncho
beret turban veil suit kilt sash buckle zip lace quill typewriter printer tablet microphone loudspeaker projector
charger antenna satellite boomerang seesaw trampoline hamper mat tile slab beam pane letterbox postbox dustbin
paintbrush toothbrush hairbrush teacup ornament figurine tapestry blindfold rucksack briefcase satchel pram trolley
lifeboat tricycle engine motor pump lever bolt screw padlock doormat hanger peg goblet broomstick matchbox lighter cot
candlestick hinge
"""

FOODS = """
apple banana orange pear peach plum cherry grape lemon lime melon watermelon strawberry raspberry berry pineapple
coconut mango/mangoes tomato/tomatoes potato/potatoes carrot onion cabbage pepper cucumber pumpkin bean pea nut
walnut almond egg cake pie biscuit cookie muffin bun sandwich pizza burger sausage pancake waffle sweet tart pudding
doughnut cupcake loaf/loaves pastry olive mushroom radish turnip avocado apricot fig lettuce leek parsnip courgette
aubergine sprout lentil chestnut hazelnut peanut raisin kiwi papaya nectarine grapefruit blueberry blackberry
gooseberry cranberry omelette scone croissant bagel pretzel cracker chip crisp noodle dumpling meatball steak fillet
kebab taco lollipop marshmallow dessert snack meal cheesecake brownie
clementine tangerine satsuma lychee pomegranate quince artichoke cauliflower yam chilli/chillies gherkin pickle
shallot marrow chickpea crumpet flan quiche tartlet meringue macaroon truffle baguette cutlet drumstick prawn sardine
anchovy mussel clam
"""

IDEAS = """
idea story question answer plan secret problem reason truth joke rule word name number fact dream message song poem
report speech lie promise wish choice decision mistake excuse theory opinion argument suggestion method recipe list
riddle rhyme tale legend myth fable chapter sentence phrase language note email warning rumour instruction order
request offer invitation apology greeting compliment insult complaint description explanation definition example
detail clue code password equation sum strategy project task job duty goal habit memory thought feeling fear hope
belief mystery miracle adventure experience skill trick prayer verse chorus tune melody film programme article essay
review summary agreement contract law deal bargain price debt title topic subject proverb saying signal hint guess
solution result score spell curse
"""

EVENTS = """
party wedding storm festival concert game match meeting lesson class holiday trip journey race battle dinner lunch
breakfast supper picnic show performance ceremony celebration birthday funeral exam test interview competition
tournament parade fair carnival dance contest lecture visit voyage expedition flight walk ride hike feast banquet
rehearsal practice quiz/quizzes debate flood earthquake fire accident disaster emergency harvest sale auction
barbecue sunset sunrise eclipse
"""

PLACES = """
garden kitchen house school park market city town village forest river lake sea beach mountain hill field farm road
street shop library church hospital station office room bedroom bathroom hall castle palace tower bridge harbour
island valley desert jungle cave hut cottage barn stable cinema theatre museum gallery restaurant cafe hotel bakery
factory mill workshop classroom playground zoo stadium airport prison court temple garage shed attic cellar basement
corridor yard courtyard square meadow pond stream swamp marsh orchard vineyard cliff shore coast bay canyon
volcano/volcanoes glacier country kingdom home apartment camp ranch mansion fortress fort ruin tomb monument
lighthouse windmill pier dock port canal dam tunnel quarry path lane avenue alley highway track trail supermarket
pharmacy bookshop bank pub inn laboratory studio warehouse store kiosk stall lounge nursery pantry hallway staircase
balcony porch terrace loft greenhouse grove dune lagoon reef ocean pool waterfall creek brook riverbank hillside
summit peak ridge slope clearing bog moor cove cemetery graveyard campsite university college academy kindergarten
clinic embassy cathedral chapel monastery abbey shrine synagogue mosque platform arena gym aquarium circus fairground
dungeon chamber vault cabin lodge bungalow villa igloo shelter den burrow empire region neighbourhood suburb
launderette observatory planetarium auditorium ballroom boardroom dormitory scullery laundry larder toilet cloakroom
playroom foyer lobby rooftop paddock pasture farmyard pigsty henhouse kennel sanctuary woodland fen estuary delta
fjord gulf inlet headland plateau crater gorge ravine gully spa resort promenade jetty marina boathouse
"""

BODY_PAIRED = """
hand arm leg foot/feet eye ear finger tooth/teeth knee shoulder toe lip cheek elbow wrist ankle thumb heel
"""
BODY_SINGLE = "head face nose mouth neck chin forehead tongue throat stomach/stomachs"  # one per owner

ANIMAL_BODY_PAIRED = "paw wing leg ear eye claw hoof/hooves whisker"
ANIMAL_BODY_SINGLE = "tail head nose beak"

# ---------------------------------------------------------------- nouns: mass nouns (singular only)
FOOD_MASS = """
bread rice cheese butter honey jam sugar salt flour meat chocolate cream pasta soup porridge cereal toast yoghurt
garlic ginger spinach broccoli celery corn popcorn fudge toffee ham bacon beef pork salad stew curry jelly custard
mustard ketchup sauce gravy spaghetti
"""

LIQUIDS = "water milk tea coffee juice lemonade wine cocoa vinegar syrup cider"

MATERIALS = """
wood paper sand mud snow ice gold silver money wool cotton silk leather paint soap oil coal grass hay dust clay iron
steel copper plastic rubber string glue ink wax chalk cement gravel dirt soil rubbish furniture equipment luggage
jewellery clothing firewood timber fuel petrol medicine perfume powder seaweed
"""

IDEA_MASS = "news advice information music homework knowledge poetry history science art gossip nonsense wisdom"

# ---------------------------------------------------------------- names (no determiner)
PERSON_NAMES = """
anna tom maria james sarah john emma david lucy peter kate michael sophie daniel alice paul mary george laura jack
emily henry grace oliver thomas ella william clara samuel julia adam hannah ben amy leo olivia max chloe sam ruby
harry lily charlie isabel noah mia ethan eva lucas nina oscar zoe felix jane mark helen robert susan richard jenny
simon rachel chris martha frank nora arthur alan ivan carlos pedro luis sofia elena marco pierre marie hans greta
lars ingrid olga boris yuki kenji mei wei raj priya ahmed fatima omar layla ali amir hassan kofi amara zara aisha
jamal diego mateo lucia rosa hugo jonas erik freya astrid sven nils klaus heidi otto leon jules louis claire camille
andre victor vincent martin philip steven kevin brian tony jim bob joe fred ted ruth edith agnes beth betty molly
polly holly ivy daisy poppy iris jasmine bella stella luna eric ian owen dylan ryan sean liam connor finn rory isla
ava evie maya jacob joshua isaac toby archie freddie
"""

PLACE_NAMES = """
london paris rome berlin madrid lisbon vienna prague athens dublin edinburgh amsterdam moscow cairo tokyo beijing
delhi sydney toronto chicago boston venice oslo stockholm copenhagen helsinki warsaw budapest istanbul geneva zurich
barcelona milan naples munich hamburg glasgow manchester liverpool oxford cambridge york bristol lima nairobi mumbai
bangkok seoul shanghai singapore france spain italy germany england scotland ireland wales egypt china india japan
brazil canada mexico russia greece norway sweden finland denmark poland portugal austria switzerland belgium holland
iceland africa asia europe america australia kenya peru chile argentina morocco nepal korea vietnam cuba jamaica
"""

# ---------------------------------------------------------------- verbs
VERBS_ANY = """
want need like love hate have/had/has take/took bring/brought buy/bought sell/sold carry find/found see/saw
keep/kept hold/held share hide/hid steal/stole lose/lost get/got give/gave send/sent show lend/lent hand offer pass
post deliver order collect choose/chose return receive drop/dropped pick touch check count weigh pack store move
throw/threw catch/caught grab/grabbed drag/dragged fetch lift push pull borrow own rent notice watch examine inspect
compare prefer/preferred guard protect save spot/spotted seek/sought miss accept swap/swapped trade exchange donate
smell sort stack load unload wrap/wrapped bury toss kick
"""

VERBS_OBJECT = """
open close break/broke fix clean wash paint build/built repair replace polish lock unlock fill empty cut/cut
bend/bent shake/shook fold hang/hung tie untie sharpen carve decorate draw/drew design invent make/made create mend
sew knit/knitted weave/wove cover roll spin/spun twist squeeze stretch press lower raise light/lit burn melt dry
scrub/scrubbed tear/tore crush smash mark sign test try measure plant water ring/rang switch tap/tapped
"""

VERBS_FOOD = """
eat/ate cook bake taste slice chop/chopped peel grow/grew serve swallow chew bite/bit fry boil roast toast grill mash
mix freeze/froze warm heat cool prepare finish devour nibble dip/dipped spread/spread sprinkle squash
"""

VERBS_LIQUID = "drink/drank pour spill sip/sipped stir/stirred boil heat warm taste cool freeze serve"

VERBS_PERSON = """
help meet/met call visit thank follow teach/taught warn greet invite ask hug/hugged kiss chase feed/fed admire trust
blame forgive/forgave marry join rescue pay/paid hire interview wake/woke scare frighten surprise annoy amuse
comfort encourage guide lead/led attack defend fight/fought beat/beat hit/hit tease punish praise respect fear
bother disturb interrupt ignore obey accompany approach recognise phone contact tickle poke nudge cuddle stroke
pat/patted dress bathe hunt trap/trapped capture release free arrest rob/robbed trick cheer applaud congratulate
welcome embrace introduce recommend employ train treat cure heal entertain impress inspire persuade convince remind
delight upset/upset offend insult challenge defeat overtake/overtook
"""

VERBS_IDEA = """
explain discuss remember forget/forgot understand/understood describe learn study answer ask solve accept reject
consider repeat write/wrote read/read tell/told hear/heard believe doubt imagine change improve support mention
suggest prove discover reveal express announce publish translate predict guess keep break follow like love enjoy
know/knew invent create compose recite memorise whisper shout record edit copy print begin/began continue complete
defend criticise praise ignore share
"""

VERBS_EVENT = """
enjoy miss plan/planned attend organise cancel/cancelled win/won lose watch host start finish join leave/left
remember prepare celebrate postpone arrange survive describe mention forget expect avoid hate love like delay begin
end interrupt spoil ruin record announce
"""

VERBS_PLACE = """
visit explore enter leave cross climb reach search clean sweep/swept tidy paint decorate guard build own rent sell
buy find approach avoid defend destroy fill describe remember love miss admire prefer share protect inspect
patrol/patrolled rebuild/rebuilt repair
"""

VERBS_MOTION = """
go/went come/came walk run/ran drive/drove ride/rode hurry travel/travelled return sail march wander rush jog/jogged
stroll race move fly/flew swim/swam climb crawl creep/crept sneak dash hike cycle
"""

VERBS_INTRANSITIVE = """
sleep/slept sit/sat stand/stood wait jump fly swim arrive fall/fell rest play shiver tremble hide disappear appear
hurry sink/sank float drift crawl bounce slide/slid slip/slipped stumble stay escape vanish grow change survive
breathe wake dig/dug leap/leapt wriggle wobble rise/rose settle gather sneeze yawn cough blink run walk dive splash
nap/napped doze wander return
"""

VERBS_INTRANSITIVE_HUMAN = """
laugh smile cry sing/sang dance shout whisper work listen speak/spoke talk agree argue complain nod/nodded
kneel/knelt relax live pray vote struggle succeed fail scream giggle sigh frown grin/grinned weep/wept dream
hesitate behave pause recover think/thought read write cook paint study wink chat/chatted gossip joke knock snore
hum/hummed whistle clap/clapped cheer wave bow exercise train practise rehearse perform compete win lose
panic/panicked quarrel/quarrelled apologise reply respond protest celebrate shop/shopped wash eat drink bathe skate
ski surf sail blush faint sweat sulk mumble mutter yell sob/sobbed groan moan gasp linger travel
"""

VERBS_INTRANSITIVE_ANIMAL = """
bark growl howl roar hiss buzz purr squeak chirp quack neigh graze hatch sting/stung pounce eat drink hunt sniff
scratch bite
"""

VERBS_SPEECH = """
say/said think know hope feel/felt realise promise admit/admitted claim suspect decide explain notice hear believe
remember forget dream discover learn understand guess imagine announce agree insist pretend worry fear complain
reply shout whisper mention doubt write read report argue confirm deny expect prove see
"""

VERBS_BODY = """
wash hurt/hurt raise lower scratch rub/rubbed touch move shake lift bend stretch cover injure close open wave hold
cross fold break twist bump cut warm dry clean lick
"""

# Subsets for animal subjects (every verb here is also in a list above).
VERBS_ANY_ANIMAL = """
want find steal hide carry drop bury grab hold pull push smell like lose need take bring love catch touch fetch guard
drag kick
"""
VERBS_FOOD_ANIMAL = "eat chew bite swallow smell taste steal nibble devour find"
VERBS_LIQUID_ANIMAL = "drink sip spill"
VERBS_PERSON_ANIMAL = """
chase follow watch bite scare attack find ignore greet hunt catch trust fear kick push love wake frighten bother
approach see hear notice
"""
VERBS_PLACE_ANIMAL = "enter leave cross search explore guard find approach avoid climb"
VERBS_MOTION_ANIMAL = "go come walk run hurry wander rush race move fly swim climb crawl creep sneak dash return"
VERBS_BODY_ANIMAL = "lick wash scratch hurt raise shake stretch move twist injure"

# ---------------------------------------------------------------- adjectives
ADJ_GENERAL = """
big small old new little large tiny huge beautiful strange good bad nice lovely famous ordinary special wonderful
terrible perfect ugly pretty fine great enormous massive gigantic elegant fancy plain unusual familiar mysterious
magnificent marvellous splendid gorgeous charming awful horrible dreadful excellent fantastic amazing remarkable
extraordinary odd weird precious favourite average typical unknown popular mighty grand miniature
"""

ADJ_COLOUR = """
red blue green yellow black white brown grey pink purple orange golden silver scarlet crimson violet turquoise beige
ivory bronze maroon lilac emerald amber pale
"""

ADJ_PERSON = """
happy sad angry tired hungry thirsty brave kind clever friendly busy lazy quiet shy proud lonely nervous calm
cheerful gentle polite rude honest careful careless curious young wise silly funny serious strong weak sick healthy
clumsy bold generous greedy selfish jealous grumpy sleepy excited bored worried scared surprised confused pleased
delighted disappointed annoyed frightened terrified amazed exhausted relaxed anxious eager patient impatient loyal
faithful humble modest noble smart bright intelligent stupid foolish talented skilful lucky unlucky poor rich
wealthy hardworking stubborn cruel wicked evil nasty mean fair strict tough cute handsome elderly slim thin fat
skinny plump bald blind deaf loud merry jolly gloomy miserable unhappy upset furious thankful grateful hopeful
helpful thoughtful cautious reckless daring fearless cowardly timid vain arrogant respectful restless drowsy weary
starving injured wounded lost missing homeless retired idle energetic lively active playful naughty mischievous
obedient graceful sensible sly cunning sincere reliable caring loving unfriendly hostile envious stingy thoughtless
crazy mad tense moody bossy sensitive romantic heroic ambitious determined confident
cheeky giddy dizzy freckled witty shrewd jovial sulky snobbish dainty frail feeble stout lanky scrawny gallant
valiant devoted diligent studious famished ravenous drenched sleepless tearful gleeful sorrowful mournful wistful grim
stern solemn earnest candid humorous courteous gracious hospitable considerate compassionate sympathetic trustworthy
dishonest deceitful spiteful resentful courageous
"""

# Only after a verb ("the boy was afraid"), never before a noun.
ADJ_PREDICATIVE = "afraid asleep awake alone alive glad ill sorry aware ready unwell sure certain ashamed keen willing"

ADJ_ANIMAL = """
wild tame fierce furry fluffy hairy spotted striped woolly scaly slimy sleek shaggy dangerous harmless noisy stray
poisonous hungry sleepy playful
"""

ADJ_THING = """
heavy light wooden metal plastic broken shiny soft hard smooth rough sharp blunt round square flat empty full warm
cold hot wet dry sticky dusty rusty dirty clean dull bright dark thick thin long short wide narrow deep shallow tall
low tight loose fragile delicate solid hollow sturdy useful useless handy cheap expensive valuable rare common
antique modern ancient spare extra damaged cracked torn bent twisted tangled folded crumpled wrinkled faded stained
muddy damp frozen burnt melted stolen hidden magic magical leather silk cotton woollen paper glass stone iron steel
copper brass oval triangular circular curved straight crooked pointed patterned colourful clear transparent bulky
portable electric digital automatic mechanical handmade used open closed locked sealed wrapped silent noisy cosy
comfortable uncomfortable slippery greasy oily fragrant smelly glittering sparkling polished painted carved
velvet wicker porcelain feathery spiky bumpy lumpy springy gleaming battered dented chipped scratched frayed
threadbare tattered
"""

ADJ_FOOD = """
fresh ripe sweet sour bitter salty spicy delicious tasty juicy crunchy rotten stale raw cooked frozen hot cold warm
soft hard soggy crisp crispy creamy chewy sticky greasy mouldy burnt roasted baked fried boiled grilled toasted
sliced chopped mashed homemade organic healthy bland rich tender tough dry moist unripe leftover disgusting
"""

ADJ_LIQUID = (
    "hot cold warm fresh sweet sour bitter strong weak clear dirty muddy icy lukewarm fizzy sparkling thick creamy"
)

ADJ_PLACE = """
quiet busy crowded empty dark bright sunny peaceful noisy lonely ancient modern distant nearby narrow wide deep cosy
warm cold damp muddy dusty dirty clean tidy messy untidy grand royal public private secret hidden remote rural local
foreign famous popular deserted abandoned haunted magical enchanted sandy rocky grassy snowy icy frozen misty foggy
windy rainy stormy shady hot dry wet fertile steep flat low open closed spacious cramped gloomy cheerful elegant
shabby neat wooden stone vast endless wild tropical northern southern eastern western central coastal sleepy lively
bustling charming historic medieval ruined silent holy sacred dangerous safe
"""

ADJ_IDEA = """
simple clever strange difficult easy important interesting boring funny sad true false serious silly brilliant
terrible useful useless new old secret long short good bad great wonderful clear complicated confusing obvious
surprising shocking amazing exciting dull ridiculous absurd sensible reasonable wise foolish dangerous safe practical
original creative traditional popular famous familiar odd unusual common rare perfect honest rude cruel bold
dramatic tragic romantic mysterious beautiful sweet happy gloomy powerful weak strong urgent private personal
official final brief detailed vague precise exact correct wrong accurate fair unfair recent latest
"""

ADJ_EVENT = """
long short big small great wonderful terrible exciting boring noisy quiet grand formal annual weekly royal huge
important famous successful sudden violent secret special private public festive joyful memorable delightful lively
dull crowded musical cheerful sad late early
"""

ADJ_BODY = "left right sore bare dirty cold clean tiny broken injured swollen bruised strong weak long bony skinny"

# ---------------------------------------------------------------- adverbs
ADV_MANNER = """
quickly slowly quietly loudly carefully happily sadly gently suddenly softly proudly angrily calmly politely rudely
bravely kindly nervously patiently eagerly anxiously silently easily secretly openly honestly clearly badly well fast
neatly carelessly correctly cheerfully gladly sleepily lazily busily hungrily greedily noisily clumsily gracefully
smoothly roughly firmly tightly loosely warmly coldly sweetly bitterly fiercely wildly madly wisely foolishly
cleverly boldly shyly curiously rapidly swiftly steadily briskly lightly heavily deeply freely safely dangerously
cautiously peacefully playfully tenderly lovingly thoughtfully generously willingly reluctantly hastily hurriedly
gradually instantly immediately eventually finally merrily joyfully gleefully gloomily miserably fearlessly timidly
awkwardly elegantly beautifully perfectly poorly properly simply mysteriously strangely oddly furiously impatiently
hopefully helpfully seriously sincerely sharply sternly strictly wearily
gratefully fondly solemnly faithfully briefly crossly grumpily tidily loyally warily dreamily grimly casually
confidently
"""

ADV_FREQUENCY = "always often usually sometimes never rarely seldom occasionally frequently regularly"

ADV_DEGREE = """
very quite really rather too so extremely fairly incredibly terribly remarkably unusually surprisingly slightly truly
awfully
"""

# ---------------------------------------------------------------- time words
DAYS = "monday tuesday wednesday thursday friday saturday sunday"
MONTHS = "january february march april may june july august september october november december"
SEASONS = "summer winter spring autumn"
TIME_UNITS = "day week month year weekend"
PARTS_OF_DAY = "morning evening afternoon"
POINTS_OF_DAY = "night dawn noon midnight dusk"
