"""Units the settings share."""

MIB = 1024 * 1024
