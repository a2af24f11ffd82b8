"""argparse types shared by the management commands, bounded like the database columns."""

import argparse
from collections.abc import Callable

from annotate import validators


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {number}")
        return number

    parse.__name__ = "number"  # argparse says "invalid number value" on a ValueError
    return parse


round_number = bounded_int(0, validators.MAX_ROUND)
overlap = bounded_int(1, validators.MAX_OVERLAP)
