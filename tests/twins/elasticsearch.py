"""An Elasticsearch twin: the endpoints our adapter uses, over HTTP on loopback, in memory.

It answers the way Elasticsearch 9 does for index creation with mappings,
aliases (HEAD/GET `_alias`, atomic `_aliases`), `_bulk` (NDJSON, strict
mappings enforced), `_refresh`, index deletion and a `_search` that
understands our bool / simple_query_string / nested-filter / search_after
body with a naive scorer. Every request is recorded for assertions.
"""

from __future__ import annotations

import json
import re
import shlex
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.twins.loopback import LoopbackServer

HEADERS = {"X-Elastic-Product": "Elasticsearch", "Content-Type": "application/json"}


def _words(text) -> list[str]:
    return re.findall(r"\w+", str(text or "").lower())


class ElasticsearchTwin(LoopbackServer):
    def __init__(self):
        self.indexes: dict[str, dict] = {}  # name -> {"mappings": ..., "docs": {id: source}, "aliases": set()}
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self._listen(ThreadingHTTPServer(("127.0.0.1", 0), self._handler()))
        self.url = self.base_url

    def requests_to(self, method: str, pattern: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == method and re.fullmatch(pattern, r["path"])]

    def resolve(self, name: str) -> list[str]:
        """Concrete indexes behind `name` (an index or an alias)."""
        if name in self.indexes:
            return [name]
        return sorted(n for n, index in self.indexes.items() if name in index["aliases"])

    # --- endpoints -----------------------------------------------------------------------------
    def create(self, name, body):
        if self.resolve(name):
            return 400, {"error": {"type": "resource_already_exists_exception", "reason": f"{name} exists"},
                         "status": 400}
        self.indexes[name] = {"mappings": body.get("mappings", {}), "settings": body.get("settings", {}),
                              "docs": {}, "aliases": set(body.get("aliases", {}))}
        return 200, {"acknowledged": True, "shards_acknowledged": True, "index": name}

    def get_alias(self, name):
        found = {n: {"aliases": {name: {}}} for n in self.resolve(name) if name not in self.indexes}
        if not found:
            return 404, {"error": f"alias [{name}] missing", "status": 404}
        return 200, found

    def update_aliases(self, body):
        actions = body.get("actions", [])
        for action in actions:  # validate everything first: the call is atomic
            (kind, spec), = action.items()
            if spec["index"] not in self.indexes:
                return 404, {"error": {"type": "index_not_found_exception"}, "status": 404}
        for action in actions:
            (kind, spec), = action.items()
            aliases = self.indexes[spec["index"]]["aliases"]
            aliases.add(spec["alias"]) if kind == "add" else aliases.discard(spec["alias"])
        return 200, {"acknowledged": True}

    def delete_index(self, name):
        if name not in self.indexes:
            return 404, {"error": {"type": "index_not_found_exception"}, "status": 404}
        del self.indexes[name]
        return 200, {"acknowledged": True}

    def bulk(self, default_index, raw: bytes):
        lines = [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
        items, errors, position = [], False, 0
        while position < len(lines):
            (op, meta), = lines[position].items()
            position += 1
            targets = self.resolve(meta.get("_index", default_index))
            if len(targets) != 1:
                items.append({op: {"_id": meta["_id"], "status": 404, "error": {"type": "index_not_found_exception"}}})
                errors = True
                position += op != "delete"
                continue
            index = self.indexes[targets[0]]
            if op == "delete":
                existed = index["docs"].pop(meta["_id"], None) is not None
                items.append({op: {"_index": targets[0], "_id": meta["_id"], "status": 200 if existed else 404,
                                   "result": "deleted" if existed else "not_found"}})
                continue
            source = lines[position]
            position += 1
            unknown = set(source) - set(index["mappings"].get("properties", {}))
            if index["mappings"].get("dynamic") == "strict" and unknown:
                items.append({op: {"_id": meta["_id"], "status": 400, "error": {
                    "type": "strict_dynamic_mapping_exception", "reason": f"unknown fields {sorted(unknown)}"}}})
                errors = True
                continue
            created = meta["_id"] not in index["docs"]
            index["docs"][meta["_id"]] = source
            items.append({op: {"_index": targets[0], "_id": meta["_id"], "status": 201 if created else 200,
                               "result": "created" if created else "updated"}})
        return 200, {"took": 1, "errors": errors, "items": items}

    def search(self, name, body):
        targets = self.resolve(name)
        if not targets:
            return 404, {"error": {"type": "index_not_found_exception", "reason": name}, "status": 404}
        query = body["query"]["bool"]
        text = query["must"][0]["simple_query_string"]
        hits = []
        for index in targets:
            for doc_id, source in self.indexes[index]["docs"].items():
                if not all(_passes(source, f) for f in query.get("filter", [])):
                    continue
                score = _score(source, text["query"], text["fields"])
                if score:
                    hits.append({"_index": index, "_id": doc_id, "_score": score, "sort": [score, source["id"]]})
        hits.sort(key=lambda h: (-h["_score"], h["sort"][1]))
        if after := body.get("search_after"):
            hits = [h for h in hits if (-h["sort"][0], h["sort"][1]) > (-after[0], after[1])]
        return 200, {"took": 1, "timed_out": False, "hits": {"max_score": None, "hits": hits[:body.get("size", 10)]}}

    # --- HTTP ----------------------------------------------------------------------------------
    def route(self, method: str, path: str, body: bytes):
        parts = [p for p in path.split("/") if p]
        data = json.loads(body) if body and not path.endswith("_bulk") else {}
        if method == "GET" and not parts:
            return 200, {"name": "twin", "version": {"number": "9.1.0", "build_flavor": "default"},
                         "tagline": "You Know, for Search"}
        if parts[:1] == ["_alias"] and method in ("GET", "HEAD"):
            return self.get_alias(parts[1])
        if parts == ["_aliases"] and method == "POST":
            return self.update_aliases(data)
        if parts[-1] == "_bulk" and method in ("POST", "PUT"):
            return self.bulk(parts[0] if len(parts) == 2 else None, body)
        if len(parts) == 2 and parts[1] == "_refresh":
            return (200, {"_shards": {"total": 1, "successful": 1, "failed": 0}}) if self.resolve(parts[0]) \
                else (404, {"status": 404})
        if len(parts) == 2 and parts[1] == "_search" and method == "POST":
            return self.search(parts[0], data)
        if len(parts) == 1 and method == "PUT":
            return self.create(parts[0], data)
        if len(parts) == 1 and method == "DELETE":
            return self.delete_index(parts[0])
        if len(parts) == 1 and method == "HEAD":
            return (200 if self.resolve(parts[0]) else 404), {}
        return 400, {"error": f"twin does not know {method} {path}", "status": 400}

    def _handler(self):
        twin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _serve(self):
                url = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with twin.lock:
                    twin.requests.append({"method": self.command, "path": url.path, "params": parse_qs(url.query),
                                          "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                    status, payload = twin.route(self.command, url.path, body)
                data = b"" if self.command == "HEAD" else json.dumps(payload).encode()
                self.send_response(status)
                for key, value in HEADERS.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

        return Handler


def _field_words(source: dict, field: str) -> list[str]:
    return _words(source.get(field.split("^")[0]))


def _clause_matches(words: list[str], term: str) -> bool:
    if " " in term:  # a phrase
        wanted = _words(term)
        return any(words[i:i + len(wanted)] == wanted for i in range(len(words)))
    if term.endswith("*"):
        return any(word.startswith(term[:-1].lower()) for word in words)
    return term.lower() in words


def _score(source: dict, query: str, fields: list[str]) -> float:
    """Sum over the wanted terms of the best field boost; 0 when an AND term or a NOT term fails."""
    try:
        tokens = shlex.split(query.replace("|", " | "), posix=True)
    except ValueError:
        tokens = query.replace("|", " | ").split()
    groups: list[list[str]] = []
    for position, token in enumerate(tokens):
        if token == "|":
            continue
        if position and tokens[position - 1] == "|" and groups:
            groups[-1].append(token)
        else:
            groups.append([token])
    total = 0.0
    for group in groups:
        best = 0.0
        for term in group:
            negated = term.startswith("-")
            term = term.lstrip("-")
            boosts = [float(f.split("^")[1]) if "^" in f else 1.0 for f in fields
                      if _clause_matches(_field_words(source, f), term)]
            if negated:
                if boosts:
                    return 0.0
                best = max(best, 0.0001)
            else:
                best = max(best, max(boosts, default=0.0))
        if not best:
            return 0.0
        total += best
    return total


def _passes(source: dict, condition: dict) -> bool:
    if "terms" in condition:
        (field, values), = condition["terms"].items()
        return source.get(field) in values
    nested = condition["nested"]["query"]["bool"]["filter"]
    return any(all(_in_range(variant, c["range"]) for c in nested) for variant in source.get("variants", []))


def _in_range(variant: dict, spec: dict) -> bool:
    (field, bounds), = spec.items()
    value = variant[field.split(".")[-1]]
    checks = {"gte": lambda b: value >= b, "lte": lambda b: value <= b, "gt": lambda b: value > b}
    return all(checks[op](bound) for op, bound in bounds.items())
