"""Flask-AppBuilder's own strings that its Simplified Chinese catalog lacks.

Listed here so that ``trellis i18n update`` puts them in the core's catalog,
which Flask-Babel merges after FAB's: the core's translation fills the gap.
Nothing imports this module; it exists to be extracted.
"""

from flask_babel import lazy_gettext as _l

FAB_STRINGS = [
    _l("Add"), _l("Edit"), _l("Show"), _l("Delete"), _l("Cancel"), _l("In"), _l("Not In"),
    _l("Start with"), _l("Contains (insensitive)"), _l("Not a valid choice"),
    _l("Are you sure you want to delete this item?"), _l("Database Error"),
    _l("Groups"), _l("List Groups"), _l("Add Group"), _l("Edit Group"), _l("Show Group"),
    _l("Either select a role or a group"), _l("Edit User Information"),
    _l("User information changed"), _l("The user's password for authentication"),
    _l("User(s) exists in the group, cannot delete"),
    _l("User(s) exists in the role, cannot delete"),
    _l("It's not a good policy to remove a user, just make it inactive"),
    _l("The user group on the application, this will associate with a list of roles "
       "associated with the group"),
    # FAB's own roles, shown translated in the user form and list (trellis.fastpaths)
    _l("Admin"), _l("Public"),
    _l("Must have at least two capital letters, one special character, two digits, three "
       "lower case letters and a minimal length of 10."),
]
