"""What the user asked for, validated: the single source of values for the templates."""


class InputError(ValueError):
    """Bad input from the user: the CLI prints the message as one line and exits 2."""
