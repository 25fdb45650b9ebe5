"""Automation rules: when something happens to records (an event, a schedule, a
date coming up), test them with a condition tree and run actions plugins offer.

``models.py`` (rules, versions, runs, date firings), ``definition.py`` (what a
rule says, checked), ``engine.py`` (saving and versions, triggers, runs, loop
stopping, dry runs, the tick job), ``views.py`` (*Admin > Automation* and
``/api/v1/automation/``).  See docs/automation.md.
"""
