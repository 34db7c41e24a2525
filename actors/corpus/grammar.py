"""A probabilistic context-free grammar of simple English sentences: tokenq's default corpus, needing no download.

Written for this project. About 1,540 nouns, 520 verbs, 620 adjectives, 150 adverbs and 260 names (the lists are in
actors/corpus/words.py) are combined by a handful of sentence shapes: subject-verb-object with adjectives, adverbs
and prepositional phrases, relative clauses ("the man who sells fish", "the apples that she bought"), two clauses
joined by a conjunction, conditionals, copula and existential sentences, and reported speech. Number agreement holds
throughout: subject and verb ("she walks", "they walk", "i am"), determiner and noun ("an old box", "these boxes",
"three boxes", "some milk"); transitive verbs take an object of a fitting kind, intransitive verbs take none.

Within every word list the i-th word is drawn with weight 1 / (i + 1) ** ZIPF_EXPONENT, the lists being ordered from
common to rare, so word frequencies are Zipf-like while, over 200,000 sentences, every word still appears.

A sentence is lowercase a-z words separated by single spaces and ends in the token "."; it has at most MAX_TOKENS
tokens. Only `random.Random(seed).random` is used, so a corpus is the same on every machine.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from itertools import accumulate

from actors.corpus import words as W

ZIPF_EXPONENT = 0.7
MAX_TOKENS = 24  # the final "." included

PRESENT, PAST, MODAL = 0, 1, 2  # clause tenses; MODAL is "will / can / might ... + base form"
THIRD, PLURAL, FIRST, SECOND = 0, 1, 2, 3  # subject agreement: "she, the dog" / "they, we, dogs" / "i" / "you"

# ---------------------------------------------------------------- morphology

_VOWELS = "aeiou"


def _plural(noun: str) -> str:
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in _VOWELS:
        return noun[:-1] + "ies"
    return noun + "s"


def _third_person(verb: str) -> str:
    if verb.endswith(("s", "x", "z", "ch", "sh", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2] not in _VOWELS:
        return verb[:-1] + "ies"
    return verb + "s"


def _past(verb: str) -> str:
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2] not in _VOWELS:
        return verb[:-1] + "ied"
    return verb + "ed"


def _irregular(texts: list[str]) -> dict[str, list[str]]:
    """Explicit forms ("man/men", "sell/sold") from every list: written once, they hold wherever the word is used."""
    forms: dict[str, list[str]] = {}
    for text in texts:
        for item in text.split():
            head, *rest = item.split("/")
            if rest:
                if forms.setdefault(head, rest) != rest:
                    raise ValueError(f"conflicting forms for {head!r}: {forms[head]} and {rest}")
    return forms


_NOUN_TEXTS = [v for k, v in vars(W).items() if k.isupper() and not k.startswith("VERBS_") and isinstance(v, str)]
_PLURALS = _irregular(_NOUN_TEXTS)
_VERB_TEXTS = [v for k, v in vars(W).items() if k.startswith("VERBS_")]
_VERB_FORMS = _irregular(_VERB_TEXTS)


def _words(text: str) -> list[str]:
    """The entries' first forms, in order, without repeats."""
    return list(dict.fromkeys(item.split("/")[0] for item in text.split()))


def _count_noun(word: str) -> tuple[str, str]:
    return word, (_PLURALS[word][0] if word in _PLURALS else _plural(word))


def _verb(base: str) -> tuple[str, str, str]:
    """(base, third person singular, past)."""
    past, third = (_VERB_FORMS.get(base, []) + [None, None])[:2]
    return base, third or _third_person(base), past or _past(base)


# ---------------------------------------------------------------- weighted choice


class _Pick:
    """Draws one of `items`, the i-th with weight `weights[i]` (default: Zipf, 1 / (i + 1) ** ZIPF_EXPONENT).

    Integer weights, so cumulative sums (and hence corpora) are identical on every platform.
    """

    __slots__ = ("items", "cum", "total")

    def __init__(self, items, weights=None):
        self.items = tuple(items)
        if weights is None:
            weights = [round(1_000_000 / (i + 1) ** ZIPF_EXPONENT) for i in range(len(self.items))]
        self.cum = list(accumulate(weights))
        self.total = self.cum[-1]

    def __call__(self, r):
        return self.items[bisect_right(self.cum, r() * self.total)]


def _zipf(text: str) -> _Pick:
    return _Pick(_words(text))


def _choice(*pairs) -> _Pick:
    """_choice((item, weight), ...)."""
    return _Pick([item for item, _ in pairs], [weight for _, weight in pairs])


def _nouns(text: str) -> _Pick:
    return _Pick([_count_noun(w) for w in _words(text)])


def _mass(text: str) -> _Pick:
    return _Pick([(w, None) for w in _words(text)])


def _verbs(text: str) -> _Pick:
    return _Pick([_verb(w) for w in _words(text)])


# ---------------------------------------------------------------- adjectives and noun kinds

ADJ_GENERAL = _zipf(W.ADJ_GENERAL)
ADJ_COLOUR = _zipf(W.ADJ_COLOUR)
ADJ_PERSON = _zipf(W.ADJ_PERSON)
ADJ_PREDICATIVE = _zipf(W.ADJ_PREDICATIVE)
ADJ_ANIMAL = _zipf(W.ADJ_ANIMAL)
ADJ_THING = _zipf(W.ADJ_THING)
ADJ_FOOD = _zipf(W.ADJ_FOOD)
ADJ_LIQUID = _zipf(W.ADJ_LIQUID)
ADJ_PLACE = _zipf(W.ADJ_PLACE)
ADJ_IDEA = _zipf(W.ADJ_IDEA)
ADJ_EVENT = _zipf(W.ADJ_EVENT)
ADJ_BODY = _zipf(W.ADJ_BODY)

# Before a noun only ("the stray dog", not "the dog is stray").
_ATTRIBUTIVE_ONLY = frozenset(
    "latest stray leftover extra favourite miniature northern southern eastern western left right spare".split()
)
# Adjectives that take "very": the person and general lists, less those that are absolute or extreme.
_GRADABLE = frozenset(ADJ_PERSON.items + ADJ_GENERAL.items + ADJ_PREDICATIVE.items) - frozenset(
    """lost missing retired homeless blind deaf injured wounded bald unknown average favourite miniature enormous
    gigantic perfect huge tiny massive terrified starving exhausted furious amazing fantastic excellent magnificent
    marvellous extraordinary dreadful awful horrible terrible wonderful splendid gorgeous elderly evil asleep awake
    alone alive ready""".split()
)


class _Kind:
    """A class of nouns and the adjectives that fit it; `rel_verbs` can take it as object ("the box that she made")."""

    __slots__ = ("nouns", "specific", "general", "plural_p", "rel_verbs")

    def __init__(self, nouns: _Pick, specific: _Pick, general: _Pick | None, plural_p: float, rel_verbs=None):
        self.nouns, self.specific, self.general = nouns, specific, general
        self.plural_p, self.rel_verbs = plural_p, rel_verbs

    @property
    def countable(self) -> bool:
        return self.plural_p > 0


# ---------------------------------------------------------------- verbs

V_ANY = _verbs(W.VERBS_ANY)
V_OBJECT = _verbs(W.VERBS_OBJECT)
V_FOOD = _verbs(W.VERBS_FOOD)
V_LIQUID = _verbs(W.VERBS_LIQUID)
V_PERSON = _verbs(W.VERBS_PERSON)
V_IDEA = _verbs(W.VERBS_IDEA)
V_EVENT = _verbs(W.VERBS_EVENT)
V_PLACE = _verbs(W.VERBS_PLACE)
V_MOTION = _verbs(W.VERBS_MOTION)
V_INTRANSITIVE = _verbs(W.VERBS_INTRANSITIVE)
V_INTRANSITIVE_HUMAN = _verbs(W.VERBS_INTRANSITIVE_HUMAN)
V_INTRANSITIVE_ANIMAL = _verbs(W.VERBS_INTRANSITIVE_ANIMAL)
V_SPEECH = _verbs(W.VERBS_SPEECH)
V_BODY = _verbs(W.VERBS_BODY)
V_ANY_ANIMAL = _verbs(W.VERBS_ANY_ANIMAL)
V_FOOD_ANIMAL = _verbs(W.VERBS_FOOD_ANIMAL)
V_LIQUID_ANIMAL = _verbs(W.VERBS_LIQUID_ANIMAL)
V_PERSON_ANIMAL = _verbs(W.VERBS_PERSON_ANIMAL)
V_PLACE_ANIMAL = _verbs(W.VERBS_PLACE_ANIMAL)
V_MOTION_ANIMAL = _verbs(W.VERBS_MOTION_ANIMAL)
V_BODY_ANIMAL = _verbs(W.VERBS_BODY_ANIMAL)
V_INTRANSITIVE_HUMANS = _choice((V_INTRANSITIVE_HUMAN, 6), (V_INTRANSITIVE, 4))
V_INTRANSITIVE_ANIMALS = _choice((V_INTRANSITIVE_ANIMAL, 4), (V_INTRANSITIVE, 6))

# Verbs that may add "to" and a person after their object ("sold three apples to her neighbours").
_DATIVE = frozenset(
    """give send show lend hand offer pass post deliver return sell bring take throw explain describe tell read write
    mention announce""".split()
)

# Place verbs that also take a city or country ("visited paris", not "swept paris").
_PLACE_NAME_VERBS = frozenset(
    """visit explore enter leave cross reach search love miss admire prefer describe remember avoid approach defend
    protect""".split()
)

PERSON = _Kind(_nouns(W.PEOPLE), _choice((ADJ_PERSON, 1)), ADJ_GENERAL, 0.35)
ANIMAL = _Kind(_nouns(W.ANIMALS), _choice((ADJ_ANIMAL, 4), (ADJ_COLOUR, 3)), ADJ_GENERAL, 0.4)
OBJECT = _Kind(
    _nouns(W.OBJECTS), _choice((ADJ_THING, 7), (ADJ_COLOUR, 3)), ADJ_GENERAL, 0.4, _choice((V_ANY, 6), (V_OBJECT, 4))
)
FOOD = _Kind(
    _nouns(W.FOODS), _choice((ADJ_FOOD, 8), (ADJ_COLOUR, 1)), ADJ_GENERAL, 0.5, _choice((V_ANY, 4), (V_FOOD, 6))
)
FOOD_MASS = _Kind(_mass(W.FOOD_MASS), _choice((ADJ_FOOD, 1)), None, 0, _choice((V_ANY, 4), (V_FOOD, 6)))
LIQUID = _Kind(_mass(W.LIQUIDS), _choice((ADJ_LIQUID, 1)), None, 0, _choice((V_ANY, 4), (V_LIQUID, 6)))
MATERIAL = _Kind(_mass(W.MATERIALS), _choice((ADJ_THING, 3), (ADJ_COLOUR, 1)), None, 0, _choice((V_ANY, 1)))
IDEA = _Kind(_nouns(W.IDEAS), _choice((ADJ_IDEA, 1)), None, 0.3, _choice((V_IDEA, 1)))
IDEA_MASS = _Kind(_mass(W.IDEA_MASS), _choice((ADJ_IDEA, 1)), None, 0, _choice((V_IDEA, 1)))
EVENT = _Kind(_nouns(W.EVENTS), _choice((ADJ_EVENT, 1)), None, 0.25, _choice((V_EVENT, 1)))
PLACE = _Kind(_nouns(W.PLACES), _choice((ADJ_PLACE, 6), (ADJ_COLOUR, 1)), ADJ_GENERAL, 0.2, _choice((V_PLACE, 1)))
# plural_p > 0.5 marks parts that come in pairs or more; see _Writer.vp_body.
BODY_PAIRED = _Kind(_nouns(W.BODY_PAIRED), _choice((ADJ_BODY, 1)), None, 0.6)
BODY_SINGLE = _Kind(_nouns(W.BODY_SINGLE), _choice((ADJ_BODY, 1)), None, 0.01)
ANIMAL_BODY_PAIRED = _Kind(_nouns(W.ANIMAL_BODY_PAIRED), _choice((ADJ_BODY, 1)), None, 0.6)
ANIMAL_BODY_SINGLE = _Kind(_nouns(W.ANIMAL_BODY_SINGLE), _choice((ADJ_BODY, 1)), None, 0.01)

_ANY_OBJECTS = _choice((OBJECT, 50), (FOOD, 20), (FOOD_MASS, 10), (LIQUID, 8), (MATERIAL, 12))
_MADE_OBJECTS = _choice((OBJECT, 85), (MATERIAL, 15))
_FOODS = _choice((FOOD, 60), (FOOD_MASS, 40))
_IDEAS = _choice((IDEA, 80), (IDEA_MASS, 20))
_BODY = _choice((BODY_PAIRED, 65), (BODY_SINGLE, 35))
_ANIMAL_BODY = _choice((ANIMAL_BODY_PAIRED, 60), (ANIMAL_BODY_SINGLE, 40))
_THERE_KINDS = _choice((PERSON, 20), (ANIMAL, 25), (OBJECT, 30), (FOOD, 12), (FOOD_MASS, 6), (LIQUID, 7))
_COPULA_KINDS = _choice(
    (PERSON, 30), (ANIMAL, 12), (OBJECT, 15), (FOOD, 8), (FOOD_MASS, 4), (LIQUID, 4), (MATERIAL, 2), (PLACE, 12),
    (IDEA, 8), (IDEA_MASS, 2), (EVENT, 6),
)  # fmt: skip
_LOCATED_KINDS = frozenset([PERSON, ANIMAL, OBJECT, FOOD, FOOD_MASS, LIQUID])  # "... is in the garden"

# ---------------------------------------------------------------- function words

PERSON_NAMES = _zipf(W.PERSON_NAMES)
PLACE_NAMES = _zipf(W.PLACE_NAMES)
ADV_MANNER = _zipf(W.ADV_MANNER)
ADV_FREQUENCY = _zipf(W.ADV_FREQUENCY)
DEGREE = _zipf(W.ADV_DEGREE)
DEGREE_BEFORE_NOUN = _Pick([w for w in DEGREE.items if w not in ("quite", "too", "so")])  # not "a too old man"

SUBJECT_PRONOUNS = _choice(
    (("he", THIRD, "his"), 25), (("she", THIRD, "her"), 25), (("they", PLURAL, "their"), 20),
    (("i", FIRST, "my"), 12), (("we", PLURAL, "our"), 10), (("you", SECOND, "your"), 8),
)  # fmt: skip
OBJECT_PRONOUNS = _choice(("him", 25), ("her", 25), ("them", 25), ("me", 10), ("us", 8), ("you", 7))
POSSESSIVES = _choice(("his", 25), ("her", 25), ("their", 20), ("my", 14), ("our", 8), ("your", 7), ("its", 1))
HIS_HER = _choice(("his", 1), ("her", 1))
MODALS = _choice(
    ("will", 40), ("can", 15), ("could", 10), ("should", 8), ("would", 8), ("might", 8), ("must", 6), ("may", 5)
)
NUMBERS = _choice(
    (("two",), 30), (("three",), 22), (("four",), 12), (("five",), 10), (("six",), 6), (("ten",), 6),
    (("seven",), 4), (("eight",), 4), (("twelve",), 3), (("nine",), 3), (("twenty",), 3), (("eleven",), 1),
    (("thirty",), 1), (("fifty",), 1), (("a", "hundred"), 2), (("a", "thousand"), 1),
)  # fmt: skip
ORDINALS = _choice(("first", 10), ("last", 8), ("next", 5), ("second", 4), ("third", 2))

_A, _POSS, _NUM, _ORD = ("#a",), ("#poss",), ("#num",), ("#ord",)  # determiners filled in by _Writer.determiner
SINGULAR_DETS = _choice(
    (("the",), 50), (_A, 28), (_POSS, 8), (("this",), 4), (("that",), 3), (("every",), 2), (("another",), 2),
    (("each",), 1), (("one",), 1), (_ORD, 2),
)  # fmt: skip
PLURAL_DETS = _choice(
    (("the",), 32), ((), 22), (_NUM, 14), (_POSS, 10), (("some",), 7), (("many",), 4), (("these",), 3),
    (("those",), 3), (("several",), 2), (("a", "few"), 2), (("all", "the"), 2), (("few",), 1), (("most",), 1),
    (("no",), 1),
)  # fmt: skip
MASS_DETS = _choice(
    (("the",), 40), ((), 25), (_POSS, 10), (("some",), 12), (("more",), 3), (("a", "lot", "of"), 3),
    (("a", "little"), 2), (("this",), 2), (("that",), 1), (("no",), 1), (("enough",), 1),
)  # fmt: skip
INDEFINITE_SINGULAR_DETS = _choice((_A, 90), (("another",), 6), (("one",), 4))
INDEFINITE_PLURAL_DETS = _choice(
    ((), 30), (_NUM, 30), (("some",), 15), (("many",), 8), (("several",), 6), (("a", "few"), 8), (("no",), 3)
)
INDEFINITE_MASS_DETS = _choice(((), 30), (("some",), 40), (("a", "lot", "of"), 12), (("a", "little"), 10), (("no",), 8))

PLACE_PREPS = _choice(
    ("in", 45), ("near", 14), ("at", 8), ("outside", 8), ("behind", 7), ("beside", 5), ("by", 4), ("around", 4),
    ("inside", 3), ("across", 2),
)  # fmt: skip
PLACE_NAME_PREPS = _choice(("in", 70), ("near", 15), ("around", 10), ("outside", 5))
OBJECT_PREPS = _choice(
    ("on", 30), ("under", 25), ("behind", 12), ("beside", 10), ("near", 10), ("by", 5), ("above", 4), ("below", 4)
)
MOTION_PREPS = _choice(
    ("to", 50), ("into", 10), ("towards", 10), ("from", 10), ("through", 6), ("across", 5), ("around", 4),
    ("past", 3), ("along", 2),
)  # fmt: skip
MOTION_NAME_PREPS = _choice(("to", 75), ("from", 20), ("around", 5))
EVENT_PREPS = _choice(("after", 45), ("before", 35), ("during", 20))
CONJUNCTIONS = _choice(
    ("and", 30), ("but", 20), ("because", 15), ("so", 8), ("when", 8), ("while", 7), ("although", 5), ("after", 4),
    ("before", 3),
)  # fmt: skip
CONDITIONS = _choice(("if", 80), ("unless", 20))
RELATIVE_THAT = _choice(("that", 60), ("which", 40))
TIME_ADVERBS = {
    PRESENT: _choice(("today", 3), ("now", 2)),
    PAST: _choice(("yesterday", 5), ("earlier", 2), ("recently", 2), ("then", 2)),
    MODAL: _choice(("tomorrow", 5), ("soon", 4), ("later", 3), ("tonight", 2)),
}
DAYS = _Pick(_words(W.DAYS), [1] * 7)
DAYS_PLURAL = _Pick([d + "s" for d in DAYS.items], [1] * 7)  # "on mondays": habits, present tense
MONTHS = _Pick(_words(W.MONTHS), [1] * 12)
SEASONS = _Pick(_words(W.SEASONS), [1] * 4)
PARTS_OF_DAY = _zipf(W.PARTS_OF_DAY)
POINTS_OF_DAY = _zipf(W.POINTS_OF_DAY)
LAST_OR_NEXT = _Pick(_words(W.TIME_UNITS) + _words(W.SEASONS) + _words(W.DAYS))  # "last week", "next summer"
EVERY = _Pick(_words(W.TIME_UNITS) + _words(W.PARTS_OF_DAY) + ["night"] + _words(W.DAYS))  # "every morning"

# Tokens written straight into sentences by the code below (the rest come from the pickers above).
_LITERALS = ". a an the who that to with and not do does did be am is are was were there in at on last next every"

# ---------------------------------------------------------------- the grammar

_VOWEL_SOUND_EXCEPTIONS = frozenset("honest hour honour heir".split())
_CONSONANT_SOUND_EXCEPTIONS = frozenset(
    "unicorn uniform unique unit university useful useless usual used user union european".split()
)


def _article(word: str) -> str:
    if word[0] in _VOWELS:
        return "a" if word in _CONSONANT_SOUND_EXCEPTIONS else "an"
    return "an" if word in _VOWEL_SOUND_EXCEPTIONS else "a"


class _Writer:
    """Draws sentences from the grammar; every choice goes through `self.r`, the seeded generator's random()."""

    def __init__(self, seed: int):
        self.r = random.Random(seed).random
        self.t = PRESENT  # tense of the clause being written; relative clauses follow it

    def sentence(self) -> str:
        while True:
            words = _SHAPES(self.r)(self)
            if len(words) < MAX_TOKENS:
                words.append(".")
                return " ".join(words)

    # ------------------------------------------------ sentence shapes
    def simple(self) -> list[str]:
        return self.clause(self.tense())

    def fronted(self) -> list[str]:
        t = self.tense()
        return self.time_phrase(t) + self.clause(t)

    def joined(self) -> list[str]:
        t = self.tense()
        first = self.clause(t)
        return first + [CONJUNCTIONS(self.r)] + self.clause(t, pronoun_p=0.5)

    def conditional(self) -> list[str]:
        main = self.clause(MODAL)
        return main + [CONDITIONS(self.r)] + self.clause(PRESENT, pronoun_p=0.4)

    def copula(self) -> list[str]:
        t = self.tense()
        self.t = t
        kind = _COPULA_KINDS(self.r)
        if kind is PERSON:
            subject, agr, _, _ = self.subject(pronoun_p=0.15, animal_p=0)
        else:
            subject, plural = self.np(kind, rel_p=0.05)
            agr = PLURAL if plural else THIRD
        return subject + self.predicate(kind, t, agr)

    def there(self) -> list[str]:
        t = self.tense()
        self.t = t
        thing, plural = self.np(_THERE_KINDS(self.r), indefinite=True)
        return ["there"] + self.be(t, PLURAL if plural else THIRD) + thing + self.location()

    def speech(self) -> list[str]:
        r = self.r
        t = self.tense()
        self.t = t
        subject, agr, _, _ = self.subject(pronoun_p=0.2, animal_p=0)
        words = subject + self.verb_group(V_SPEECH(r), t, agr, adverb_p=0.05)
        if r() < 0.6:
            words.append("that")
        return words + self.clause(PRESENT if t == MODAL else t, pronoun_p=0.3)

    # ------------------------------------------------ clauses
    def tense(self) -> int:
        return _TENSES(self.r)

    def clause(self, t: int, pronoun_p: float = 0.12) -> list[str]:
        self.t = t
        subject, agr, poss, animal = self.subject(pronoun_p)
        vp = (_ANIMAL_VPS if animal else _HUMAN_VPS)(self.r)
        return subject + vp(self, t, agr, poss, animal)

    def subject(self, pronoun_p: float = 0.12, animal_p: float = 0.2) -> tuple[list[str], int, str, bool]:
        """(words, agreement, possessive for body parts, whether an animal)."""
        r = self.r
        if r() < pronoun_p:
            pronoun, agr, poss = SUBJECT_PRONOUNS(r)
            return [pronoun], agr, poss, False
        x = r()
        if x < animal_p:
            words, plural = self.np(ANIMAL, rel_p=0.06)
            return words, (PLURAL if plural else THIRD), ("their" if plural else "its"), True
        if x < 0.36:
            return [PERSON_NAMES(r)], THIRD, HIS_HER(r), False
        if x < 0.40:
            return self.person(pronoun_p=0) + ["and"] + self.person(pronoun_p=0), PLURAL, "their", False
        words, plural = self.np(PERSON, rel_p=0.07)
        return words, (PLURAL if plural else THIRD), ("their" if plural else HIS_HER(r)), False

    def verb_group(self, verb: tuple[str, str, str], t: int, agr: int, adverb_p: float = 0.2) -> list[str]:
        r = self.r
        base, third, past = verb
        x = r()
        if x < 0.06:
            if t == PRESENT:
                return ["does" if agr == THIRD else "do", "not", base]
            return ["did", "not", base] if t == PAST else [MODALS(r), "not", base]
        if t == MODAL:
            return [MODALS(r), base]
        form = past if t == PAST else (third if agr == THIRD else base)
        if x < adverb_p:
            return [ADV_FREQUENCY(r) if x < 0.13 else ADV_MANNER(r), form]
        return [form]

    def be(self, t: int, agr: int) -> list[str]:
        if t == MODAL:
            return [MODALS(self.r), "be"]
        if t == PAST:
            return ["was" if agr in (THIRD, FIRST) else "were"]
        return ["is" if agr == THIRD else "am" if agr == FIRST else "are"]

    # ------------------------------------------------ verb phrases: (self, tense, agreement, possessive, animal)
    def vp_any(self, t, agr, poss, animal):
        return self.transitive(V_ANY_ANIMAL if animal else V_ANY, _ANY_OBJECTS, t, agr)

    def vp_made(self, t, agr, poss, animal):
        words = self.transitive(V_OBJECT, _MADE_OBJECTS, t, agr, extras=False)
        if self.r() < 0.1:
            return words + ["with"] + self.np(OBJECT, adj_p=0.2, plural=False)[0]
        return words + self.extras(t)

    def vp_food(self, t, agr, poss, animal):
        return self.transitive(V_FOOD_ANIMAL if animal else V_FOOD, _FOODS, t, agr)

    def vp_liquid(self, t, agr, poss, animal):
        return self.transitive(V_LIQUID_ANIMAL if animal else V_LIQUID, _LIQUID_ONLY, t, agr)

    def vp_idea(self, t, agr, poss, animal):
        return self.transitive(V_IDEA, _IDEAS, t, agr)

    def vp_event(self, t, agr, poss, animal):
        return self.transitive(V_EVENT, _EVENT_ONLY, t, agr)

    def vp_person(self, t, agr, poss, animal):
        words = self.verb_group((V_PERSON_ANIMAL if animal else V_PERSON)(self.r), t, agr)
        return words + self.person() + self.extras(t)

    def vp_place(self, t, agr, poss, animal):
        verb = (V_PLACE_ANIMAL if animal else V_PLACE)(self.r)
        words = self.verb_group(verb, t, agr)
        if verb[0] in _PLACE_NAME_VERBS and self.r() < 0.25:
            return words + [PLACE_NAMES(self.r)] + self.extras(t, p=0.3)
        return words + self.np(PLACE, rel_p=0.04)[0] + self.extras(t, p=0.3)

    def vp_motion(self, t, agr, poss, animal):
        r = self.r
        words = self.verb_group((V_MOTION_ANIMAL if animal else V_MOTION)(r), t, agr)
        if r() < 0.2:
            words += [MOTION_NAME_PREPS(r), PLACE_NAMES(r)]
        else:
            words += [MOTION_PREPS(r)] + self.np(PLACE, adj_p=0.3)[0]
        return words + self.extras(t, p=0.3)

    def vp_intransitive(self, t, agr, poss, animal):
        verbs = (V_INTRANSITIVE_ANIMALS if animal else V_INTRANSITIVE_HUMANS)(self.r)
        return self.verb_group(verbs(self.r), t, agr) + self.extras(t, p=0.65)

    def vp_body(self, t, agr, poss, animal):
        """A body part: "washed his hands", "they raised their heads" (one each of a part everyone has one of)."""
        r = self.r
        words = self.verb_group((V_BODY_ANIMAL if animal else V_BODY)(r), t, agr)
        kind = (_ANIMAL_BODY if animal else _BODY)(r)
        part = kind.nouns(r)
        words.append(poss)
        if r() < 0.25:
            words.append(kind.specific(r)(r))
        plural = agr == PLURAL or (kind.plural_p > 0.5 and r() < 0.6)
        words.append(part[1] if plural else part[0])
        return words + self.extras(t, p=0.2)

    def vp_copula(self, t, agr, poss, animal):
        return self.predicate(ANIMAL if animal else PERSON, t, agr)

    def transitive(self, verbs: _Pick, kinds: _Pick, t: int, agr: int, extras: bool = True) -> list[str]:
        r = self.r
        verb = verbs(r)
        words = self.verb_group(verb, t, agr) + self.np(kinds(r), rel_p=0.05)[0]
        if verb[0] in _DATIVE and r() < 0.3:
            words += ["to"] + self.person(pronoun_p=0.2)
        return words + self.extras(t) if extras else words

    # ------------------------------------------------ predicates, adjuncts
    def predicate(self, kind: _Kind, t: int, agr: int) -> list[str]:
        r = self.r
        words = self.be(t, agr)
        if r() < 0.05:
            words.insert(1, "not")  # "is not", "will not be"
        x = r()
        if x < 0.12 and kind in _LOCATED_KINDS:
            return words + self.location()
        adjective = self.predicative_adjective(kind)
        if x < 0.22:
            other = self.predicative_adjective(kind)
            if other != adjective:
                return words + [adjective, "and", other]
        if adjective in _GRADABLE and r() < 0.35:
            words.append(DEGREE(r))
        return words + [adjective]

    def predicative_adjective(self, kind: _Kind) -> str:
        r = self.r
        while True:
            if kind in (PERSON, ANIMAL) and r() < 0.15:
                return ADJ_PREDICATIVE(r)
            if kind is ANIMAL and r() < 0.3:
                adjective = ADJ_PERSON(r)  # "the dog was hungry / sleepy / frightened"
            elif kind.general is not None and r() < 0.25:
                adjective = kind.general(r)
            else:
                adjective = kind.specific(r)(r)
            if adjective not in _ATTRIBUTIVE_ONLY:
                return adjective

    def extras(self, t: int, p: float = 0.4) -> list[str]:
        """Nothing, or one adjunct: a place, a manner adverb, a companion or a time."""
        r = self.r
        x = r()
        if x >= p:
            return []
        x /= p
        if x < 0.45:
            return self.location()
        if x < 0.62:
            return [ADV_MANNER(r)]
        if x < 0.74:
            return ["with"] + self.person(pronoun_p=0.15)
        return self.time_phrase(t)

    def location(self) -> list[str]:
        r = self.r
        x = r()
        if x < 0.62:
            return [PLACE_PREPS(r)] + self.np(PLACE, adj_p=0.25)[0]
        if x < 0.74:
            return [PLACE_NAME_PREPS(r), PLACE_NAMES(r)]
        return [OBJECT_PREPS(r)] + self.np(OBJECT, adj_p=0.2)[0]

    def time_phrase(self, t: int) -> list[str]:
        r = self.r
        x = r()
        if x < 0.3:
            return [TIME_ADVERBS[t](r)]
        if x < 0.5:
            return [EVENT_PREPS(r)] + self.np(EVENT, adj_p=0.15)[0]
        if x < 0.62:
            return ["in", "the", PARTS_OF_DAY(r)]
        if x < 0.7:
            return ["at", POINTS_OF_DAY(r)]
        if x < 0.8:
            return ["on", DAYS_PLURAL(r) if t == PRESENT else DAYS(r)]
        if x < 0.88:
            return ["in", MONTHS(r) if r() < 0.6 else SEASONS(r)]
        if t == PRESENT:
            return ["every", EVERY(r)]
        return ["last" if t == PAST else "next", LAST_OR_NEXT(r)]

    # ------------------------------------------------ noun phrases
    def person(self, pronoun_p: float = 0.12) -> list[str]:
        """Someone as an object: a pronoun, a name, a person or an animal."""
        r = self.r
        x = r()
        if x < pronoun_p:
            return [OBJECT_PRONOUNS(r)]
        if x < 0.3:
            return [PERSON_NAMES(r)]
        if x < 0.42:
            return self.np(ANIMAL, rel_p=0.04)[0]
        return self.np(PERSON, rel_p=0.06)[0]

    def np(
        self, kind: _Kind, rel_p: float = 0.0, adj_p: float = 0.4, plural: bool | None = None, indefinite: bool = False
    ) -> tuple[list[str], bool]:
        """(words, plural): determiner, up to two adjectives, the noun, and maybe a relative clause."""
        r = self.r
        noun = kind.nouns(r)
        if not kind.countable:
            plural = False
        elif plural is None:
            plural = r() < kind.plural_p
        words = self.adjectives(kind) if r() < adj_p else []
        words.append(noun[1] if plural else noun[0])
        words = self.determiner(kind, plural, indefinite, words[0]) + words
        if rel_p and r() < rel_p:
            words += self.relative(kind, plural)
        return words, plural

    def adjectives(self, kind: _Kind) -> list[str]:
        r = self.r
        x = r()
        if kind.general is not None and x < 0.2:
            first, second = kind.general(r), kind.specific(r)(r)
            return [first, second] if first != second else [second]
        adjective = kind.general(r) if kind.general is not None and x < 0.45 else kind.specific(r)(r)
        if adjective in _GRADABLE and x > 0.85:
            return [DEGREE_BEFORE_NOUN(r), adjective]
        return [adjective]

    def determiner(self, kind: _Kind, plural: bool, indefinite: bool, first: str) -> list[str]:
        r = self.r
        if not kind.countable:
            det = (INDEFINITE_MASS_DETS if indefinite else MASS_DETS)(r)
        elif plural:
            det = (INDEFINITE_PLURAL_DETS if indefinite else PLURAL_DETS)(r)
        else:
            det = (INDEFINITE_SINGULAR_DETS if indefinite else SINGULAR_DETS)(r)
        if det is _A:
            return [_article(first)]
        if det is _POSS:
            return [POSSESSIVES(r)]
        if det is _NUM:
            return list(NUMBERS(r))
        if det is _ORD:
            return ["the", ORDINALS(r)]
        return list(det)

    def relative(self, kind: _Kind, plural: bool) -> list[str]:
        """A relative clause: "who sells fish" after a person or animal, "that the boy bought" after a thing."""
        r = self.r
        t = PRESENT if self.t == MODAL else self.t
        agr = PLURAL if plural else THIRD
        if kind is PERSON or kind is ANIMAL:
            words = ["who" if kind is PERSON else "that"]
            if r() < 0.4:
                verbs = (V_INTRANSITIVE_ANIMALS if kind is ANIMAL else V_INTRANSITIVE_HUMANS)(r)
                return words + self.verb_group(verbs(r), t, agr, adverb_p=0.1)
            verbs, kinds = (V_FOOD, _FOODS) if kind is ANIMAL else _RELATIVE_VPS(r)
            return words + self.verb_group(verbs(r), t, agr, adverb_p=0.1) + self.np(kinds(r), adj_p=0.2)[0]
        if kind.rel_verbs is None:
            return []
        if r() < 0.4:
            pronoun, agr, _ = SUBJECT_PRONOUNS(r)
            subject = [pronoun]
        else:
            subject, several = self.np(PERSON, adj_p=0.15) if r() < 0.7 else ([PERSON_NAMES(r)], False)
            agr = PLURAL if several else THIRD
        return [RELATIVE_THAT(r)] + subject + self.verb_group(kind.rel_verbs(r)(r), t, agr, adverb_p=0.05)


_LIQUID_ONLY = _choice((LIQUID, 1))
_EVENT_ONLY = _choice((EVENT, 1))
_RELATIVE_VPS = _choice(((V_ANY, _ANY_OBJECTS), 5), ((V_IDEA, _IDEAS), 3), ((V_FOOD, _FOODS), 2))
_TENSES = _choice((PRESENT, 38), (PAST, 45), (MODAL, 17))
_SHAPES = _choice(
    (_Writer.simple, 40), (_Writer.joined, 18), (_Writer.copula, 12), (_Writer.fronted, 9), (_Writer.speech, 8),
    (_Writer.there, 7), (_Writer.conditional, 3),
)  # fmt: skip
_HUMAN_VPS = _choice(
    (_Writer.vp_any, 20), (_Writer.vp_made, 12), (_Writer.vp_person, 12), (_Writer.vp_intransitive, 12),
    (_Writer.vp_idea, 10), (_Writer.vp_motion, 9), (_Writer.vp_food, 6), (_Writer.vp_place, 6), (_Writer.vp_event, 5),
    (_Writer.vp_copula, 4), (_Writer.vp_liquid, 3), (_Writer.vp_body, 3),
)  # fmt: skip
_ANIMAL_VPS = _choice(
    (_Writer.vp_intransitive, 28), (_Writer.vp_motion, 15), (_Writer.vp_food, 15), (_Writer.vp_person, 15),
    (_Writer.vp_any, 8), (_Writer.vp_liquid, 7), (_Writer.vp_place, 5), (_Writer.vp_copula, 4), (_Writer.vp_body, 5),
)  # fmt: skip

# ---------------------------------------------------------------- vocabulary


def _strings(item, seen: set[int]) -> set[str]:
    """Every word an item of a picker (recursively: pickers, kinds, tuples, strings) can put in a sentence."""
    if isinstance(item, str):
        return set() if item.startswith("#") else {item}
    if id(item) in seen:
        return set()
    seen.add(id(item))
    if isinstance(item, _Pick):
        parts = item.items
    elif isinstance(item, _Kind):
        parts = (item.nouns, item.specific, item.general)
    elif isinstance(item, tuple):
        parts = item
    else:  # None, numbers, functions
        return set()
    return set().union(*(_strings(part, seen) for part in parts))


def _vocabulary() -> frozenset[str]:
    seen: set[int] = set()
    pickers = [v for v in globals().values() if isinstance(v, (_Pick, _Kind))] + list(TIME_ADVERBS.values())
    return frozenset(set().union(*(_strings(p, seen) for p in pickers)) | set(_LITERALS.split()))


VOCABULARY: frozenset[str] = _vocabulary()  # every token a sentence can contain, "." included
VOCABULARY_HINT: int = len(VOCABULARY)


def generate_corpus(num_sentences: int, seed: int = 0) -> list[str]:
    """Deterministic for a given (num_sentences, seed): the same list every call, on every machine."""
    writer = _Writer(seed)
    return [writer.sentence() for _ in range(num_sentences)]
