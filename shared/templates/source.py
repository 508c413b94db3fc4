"""A template's text read as JSON with the line each object starts on (for findings' locations), and
with the comments ARM accepts in templates (``//`` and ``/* */``). Pure."""
from __future__ import annotations

import json
from typing import Any

from .expressions import TemplateError

_WHITESPACE = " \t\r\n"


class _Reader:
    def __init__(self, text: str, origin: str) -> None:
        self.text, self.origin, self.pos = text, origin, 0
        self.lines: dict[int, int] = {}  # id(object) -> 1-based line where it starts
        self.keep: list = []  # the objects themselves, so their ids stay theirs

    def fail(self, what: str) -> TemplateError:
        line = self.text.count("\n", 0, self.pos) + 1
        return TemplateError(f"{self.origin}: not valid JSON at line {line}: {what}")

    def skip(self) -> None:
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch in _WHITESPACE:
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end + 1
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.fail("a comment that never ends")
                self.pos = end + 2
            else:
                return

    def value(self, depth: int = 0) -> Any:
        if depth > 200:
            raise self.fail("nested too deeply")
        self.skip()
        if self.pos >= len(self.text):
            raise self.fail("the text ends early")
        ch = self.text[self.pos]
        if ch == "{":
            return self.obj(depth)
        if ch == "[":
            return self.array(depth)
        if ch == '"':
            return self.string()
        decoder = json.JSONDecoder()
        try:
            value, end = decoder.raw_decode(self.text, self.pos)
        except json.JSONDecodeError as exc:
            raise self.fail(exc.msg) from None
        self.pos = end
        return value

    def string(self) -> str:
        try:
            value, end = json.decoder.scanstring(self.text, self.pos + 1)
        except json.JSONDecodeError as exc:
            raise self.fail(exc.msg) from None
        self.pos = end
        return value

    def obj(self, depth: int) -> dict:
        start_line = self.text.count("\n", 0, self.pos) + 1
        self.pos += 1
        out: dict = {}
        self.skip()
        if self.text.startswith("}", self.pos):
            self.pos += 1
        else:
            while True:
                self.skip()
                if not self.text.startswith('"', self.pos):
                    raise self.fail("a property name in double quotes was expected")
                key = self.string()
                self.skip()
                if not self.text.startswith(":", self.pos):
                    raise self.fail("':' was expected")
                self.pos += 1
                out[key] = self.value(depth + 1)
                self.skip()
                if self.text.startswith(",", self.pos):
                    self.pos += 1
                    continue
                if self.text.startswith("}", self.pos):
                    self.pos += 1
                    break
                raise self.fail("',' or '}' was expected")
        self.lines[id(out)] = start_line
        self.keep.append(out)
        return out

    def array(self, depth: int) -> list:
        self.pos += 1
        out: list = []
        self.skip()
        if self.text.startswith("]", self.pos):
            self.pos += 1
            return out
        while True:
            out.append(self.value(depth + 1))
            self.skip()
            if self.text.startswith(",", self.pos):
                self.pos += 1
                continue
            if self.text.startswith("]", self.pos):
                self.pos += 1
                return out
            raise self.fail("',' or ']' was expected")


def read_json_with_lines(text: str, origin: str) -> tuple[Any, dict[int, int], list]:
    """(value, id(object) -> line, the objects kept alive). Raises TemplateError naming the line."""
    reader = _Reader(text.lstrip("\ufeff"), origin)
    value = reader.value()
    reader.skip()
    if reader.pos != len(reader.text):
        raise reader.fail("text after the JSON value")
    return value, reader.lines, reader.keep
