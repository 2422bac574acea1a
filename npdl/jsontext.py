"""JSON objects from bytes npdl wrote but something may have damaged (run files, checkpoint
metadata, locks, weight headers): one place that says what is wrong with them."""
from __future__ import annotations

import json


def parse_object(raw: bytes, **loads_options) -> dict:
    """The JSON object that ``raw`` holds as UTF-8 text.

    ``loads_options`` go to ``json.loads`` (an ``object_pairs_hook`` may raise ValueError too).

    Raises:
        ValueError: what is wrong, worded to follow the thing's name ("<path>: " + message):
            "is not UTF-8 text", "is nested too deeply", "is not valid JSON (...)" or
            "is a JSON list, not an object".
    """
    try:
        data = json.loads(raw.decode("utf-8"), **loads_options)
    except UnicodeDecodeError:
        raise ValueError("is not UTF-8 text") from None
    except RecursionError:
        raise ValueError("is nested too deeply") from None
    except ValueError as exc:
        raise ValueError(f"is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"is a JSON {type(data).__name__}, not an object")
    return data
