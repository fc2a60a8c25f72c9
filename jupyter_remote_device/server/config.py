"""Traits that accept the raw strings the command line hands to an extension's class.

``--DeviceManager.probe_hosts=...`` reaches an extension's Configurable as one
string (the ServerApp does not know the trait's type when it parses argv).
These traits accept JSON (``'["a","b"]'``, ``'{"h:p": "tok"}'``) or, for lists,
comma-separated words, and then validate like the ordinary trait.
"""
import json

from traitlets import Dict, Int, List, TraitError


def _parse_list(text):
    text = text.strip()
    if not text:
        return []
    if text[0] in "[(":
        try:
            value = json.loads(text.replace("(", "[").replace(")", "]"))
        except ValueError:
            raise TraitError("not a JSON list: %r" % text)
        return value
    return [part.strip() for part in text.split(",") if part.strip()]


def _parse_dict(text):
    text = text.strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        # key=value,key=value
        value = {}
        for part in text.split(","):
            key, sep, val = part.partition("=")
            if not sep:
                raise TraitError("expected JSON or key=value pairs, got %r" % text)
            value[key.strip()] = val.strip()
    if not isinstance(value, dict):
        raise TraitError("not a JSON object: %r" % text)
    return value


class LooseList(List):
    def set(self, obj, value):
        # List.set would wrap a lone string into [string]
        if isinstance(value, str):
            value = _parse_list(value)
        return super().set(obj, value)

    def validate(self, obj, value):
        if isinstance(value, str):
            value = _parse_list(value)
        if isinstance(value, (list, tuple)):
            flat = []
            for v in value:
                # from the command line: ["a,b"] or ['["a","b"]']
                if isinstance(v, str) and ("," in v or v.strip()[:1] == "["):
                    flat.extend(_parse_list(v))
                else:
                    flat.append(v)
            value = [self._coerce_item(v) for v in flat]
        return super().validate(obj, value)

    def _coerce_item(self, v):
        if isinstance(self._trait, Int) and isinstance(v, str):
            try:
                return int(v)
            except ValueError:
                raise TraitError("not an integer: %r" % v)
        return v

    def from_string(self, s):
        return _parse_list(s)

    def from_string_list(self, s_list):
        return [x for s in s_list for x in _parse_list(s)]


class LooseDict(Dict):
    def set(self, obj, value):
        if isinstance(value, str):
            value = _parse_dict(value)
        return super().set(obj, value)

    def validate(self, obj, value):
        if isinstance(value, str):
            value = _parse_dict(value)
        return super().validate(obj, value)

    def from_string(self, s):
        return _parse_dict(s)

    def from_string_list(self, s_list):
        out = {}
        for s in s_list:
            out.update(_parse_dict(s))
        return out
