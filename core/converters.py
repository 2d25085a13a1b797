"""Path converters shared by every URLconf (registered in ``CoreConfig.ready``)."""

# At most 18 digits: any such number fits a bigint, so a lookup never fails
# to cast or overflows; anything else is no such object (404).
ID_REGEX = "[0-9]{1,18}"


class IdConverter:
    """``<id:pk>``: an object id."""

    regex = ID_REGEX

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(value)
