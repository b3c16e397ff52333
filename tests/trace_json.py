"""The JSON part of a cautograd trace of either format version, read with
the standard library alone: a version 2 trace is a ZIP archive whose
`trace.json` entry holds it, a version 1 trace is that JSON itself
(docs/trace-format.md). Tests use it where they look inside a trace."""

import json
import zipfile


def load(path):
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("trace.json"))
    with open(path) as f:
        return json.load(f)
