"""Checks a captured `messages/stream` body with the official Anthropic SDK.

Usage: check_stream.py BODY_FILE

The body is split into events by the SDK's own SSE decoder. Every event is
validated strictly against the SDK's published types
(`RawMessageStreamEvent`, `ErrorResponse` for `error`): a missing required
field, a value of the wrong type, or a field the type does not have fails.
The message is then rebuilt with the SDK's `accumulate_event`, as
`client.messages.stream(...)` does, and the result validated as a `Message`.

Prints one JSON object: the rebuilt `text` and `thinking` (blocks of each
kind joined), the rebuilt `message`, the event names in order, and the
stream's `error` body (null when it ended with `message_stop`). Exits with
status 1 and a reason on stderr when anything does not conform.
"""

import json
import sys
from typing import Any, get_args

import anthropic
from anthropic._streaming import SSEDecoder
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import ErrorResponse, Message, RawMessageStreamEvent
from pydantic import BaseModel, TypeAdapter, ValidationError

# One adapter per event type (picked by `type`, so an error names only the
# type that applies, not every member of the union).
EVENTS = {
    get_args(member.model_fields["type"].annotation)[0]: TypeAdapter(member)
    for member in get_args(get_args(RawMessageStreamEvent)[0])
}
ERROR = TypeAdapter(ErrorResponse)
MESSAGE = TypeAdapter(Message)


class NotConforming(Exception):
    """The stream does not match the SDK's types."""


def unknown_fields(value: Any, path: str) -> list[str]:
    """Paths of fields a validated model carries beyond its declared ones
    (the SDK's models accept extra fields; this check does not)."""
    found = []
    if isinstance(value, BaseModel):
        for key in value.model_extra or {}:
            found.append(f"{path}.{key}")
        for name in type(value).model_fields:
            found += unknown_fields(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found += unknown_fields(item, f"{path}[{i}]")
    return found


def relevant(e: ValidationError) -> list[str]:
    """The errors of `e` as `location: message`, leaving out the members of
    a union whose `type` is not the one sent (they only add noise)."""
    errors = e.errors()
    other = [tuple(x["loc"][:-1]) for x in errors if x["type"] == "literal_error" and x["loc"][-1] == "type"]
    kept = [x for x in errors if not any(w and tuple(x["loc"][: len(w)]) == w for w in other)]
    return [f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in kept or errors]


def strict(adapter: TypeAdapter, data: Any, what: str) -> Any:
    """`data` validated strictly by `adapter`, with no unknown fields."""
    try:
        model = adapter.validate_python(data, strict=True)
    except ValidationError as e:
        reasons = "\n  ".join(relevant(e))
        raise NotConforming(f"{what} does not validate:\n  {reasons}\n  data: {json.dumps(data)}")
    extra = unknown_fields(model, what)
    if extra:
        raise NotConforming(f"{what} has fields the SDK type lacks: {extra}\n  data: {json.dumps(data)}")
    return model


def check(body: bytes) -> dict:
    """Validates and rebuilds one stream body; see the module docs."""
    snapshot = None
    json_bufs: dict = {}
    names = []
    error = None
    for i, sse in enumerate(SSEDecoder().iter_bytes(iter([body]))):
        what = f"event #{i} ({sse.event})"
        if error is not None:
            raise NotConforming(f"{what} after the error event")
        names.append(sse.event)
        try:
            data = sse.json()
        except ValueError as e:
            raise NotConforming(f"{what}: data is not JSON ({e}): {sse.data!r}")
        if not isinstance(data, dict) or data.get("type") != sse.event:
            raise NotConforming(f"{what}: data.type differs from the event name: {sse.data}")
        if sse.event == "ping":
            if data != {"type": "ping"}:
                raise NotConforming(f"{what}: unexpected ping body {sse.data}")
            continue
        if sse.event == "error":
            error = strict(ERROR, data, what).to_dict()
            continue
        if sse.event not in EVENTS:
            raise NotConforming(f"{what}: not an event type of the SDK: {sse.data}")
        event = strict(EVENTS[sse.event], data, what)
        try:
            snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=json_bufs)
        except Exception as e:  # the SDK's own complaint, e.g. a bad index
            raise NotConforming(f"{what}: accumulate_event failed: {e!r}")
    if snapshot is None:
        snapshot_fields: dict = {"text": "", "thinking": "", "message": None}
        return {**snapshot_fields, "events": names, "error": error, "sdk_version": anthropic.__version__}
    message = snapshot.to_dict()
    if error is None:
        if names[-1] != "message_stop":
            raise NotConforming(f"the stream ends with {names[-1]}, not message_stop")
        strict(MESSAGE, message, "the rebuilt message")
    blocks = snapshot.content
    return {
        "text": "".join(b.text for b in blocks if b.type == "text"),
        "thinking": "".join(b.thinking for b in blocks if b.type == "thinking"),
        "message": message,
        "events": names,
        "error": error,
        "sdk_version": anthropic.__version__,
    }


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], "rb") as f:
        body = f.read()
    try:
        result = check(body)
    except NotConforming as e:
        print(f"not conforming to anthropic {anthropic.__version__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
