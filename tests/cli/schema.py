# SPDX-License-Identifier: MIT
"""A small JSON Schema checker: the draft-07 subset thunderpass's documented
schemas use (type, required, properties, additionalProperties, enum, const,
items, minItems, maxItems, minLength, minimum, $ref to #/definitions/...).
Debian 12's python3 has no jsonschema module by default; this is enough to
hold `doctor --json` and `stats --json` to their documented shape.

    errors = check(document, schema)   # [] when the document conforms
"""

TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _resolve(schema, root):
    ref = schema.get("$ref")
    if ref is None:
        return schema
    assert ref.startswith("#/"), ref
    node = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _check(value, schema, root, path, errors):
    schema = _resolve(schema, root)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(TYPES[t](value) for t in types):
            errors.append(f"{path}: {value!r} is not of type {'/'.join(types)}")
            return
    if "const" in schema and not (type(value) is type(schema["const"]) and value == schema["const"]):
        errors.append(f"{path}: {value!r} is not {schema['const']!r}")
    # type() too: in Python True == 1, in JSON they differ.
    if "enum" in schema and not any(type(value) is type(e) and value == e for e in schema["enum"]):
        errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if "minLength" in schema and isinstance(value, str) and len(value) < schema["minLength"]:
        errors.append(f"{path}: {value!r} is shorter than {schema['minLength']}")
    if "minimum" in schema and TYPES["number"](value) and value < schema["minimum"]:
        errors.append(f"{path}: {value!r} is below {schema['minimum']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}: missing {key!r}")
        extra = schema.get("additionalProperties", True)
        for key, v in value.items():
            if key in props:
                _check(v, props[key], root, f"{path}.{key}", errors)
            elif extra is False:
                errors.append(f"{path}: unexpected member {key!r}")
            elif isinstance(extra, dict):
                _check(v, extra, root, f"{path}.{key}", errors)
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{path}: {len(value)} items, fewer than {schema['minItems']}")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{path}: {len(value)} items, more than {schema['maxItems']}")
        if "items" in schema:
            for i, v in enumerate(value):
                _check(v, schema["items"], root, f"{path}[{i}]", errors)


def check(value, schema):
    errors = []
    _check(value, schema, schema, "$", errors)
    return errors
