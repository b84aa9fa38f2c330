"""The placeholder of the student notebooks: ``tail_f1 = blank("tail_f1 (Exercise 1)")``.

An unfilled blank must stop the run where it is, with a message that says what to
write, in every kernel (plain Python, IPython, Jupyter, Colab). A bare name such as
``___`` does not: IPython binds ``___`` to the third-last output, so an unfilled
``x = ___`` silently takes an earlier result and fails later, somewhere else.
This module has no dependencies, so the import is cheap wherever kdlab is installed.
"""

from __future__ import annotations

from typing import NoReturn

PREFIX = "fill in this blank: "


class UnfilledBlank(NotImplementedError):
    """A student notebook ran a ``blank(...)`` placeholder: code the student has not written yet."""


def blank(hint: str) -> NoReturn:
    """Raise :class:`UnfilledBlank` with the message ``fill in this blank: <hint>``.

    ``hint`` names what the blank stands for (the assigned name and the exercise).
    """
    raise UnfilledBlank(PREFIX + hint)
