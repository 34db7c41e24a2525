"""`python -m tokenq.presets`: the README's preset table."""

from tokenq.presets import markdown_table

print(markdown_table())
