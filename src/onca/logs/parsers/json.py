"""The JSON parser (schemas without a `parser`): one JSON object per record."""

from __future__ import annotations

from typing import Any

import orjson

from onca.logs.model import NOT_DECODED, ParseError, RawRecord
from onca.logs.timeformats import json_kind


class JsonParser:
    """Decodes the record with orjson, or takes the value a container reader already decoded."""

    __slots__ = ()

    def parse(self, record: RawRecord) -> dict[str, Any] | None:
        value = record.value
        if value is NOT_DECODED:
            try:
                value = orjson.loads(record.data)
            except orjson.JSONDecodeError as err:
                if not record.data.strip():
                    raise ParseError("empty record, not a JSON object") from None
                raise ParseError(f"not JSON: {err.msg} at byte {err.pos}") from None
        if type(value) is not dict:
            raise ParseError(f"a JSON {json_kind(value)}, not an object")
        return value
