"""GraphiQL at /graphql/ide in development, its scripts served from this app (the CSP allows no CDN).

The files come from the npm packages `graphiql`, `react` and `react-dom`,
unpacked into `var/graphiql` by `make graphiql` (which `make run` runs).
"""

from __future__ import annotations

from flask import Flask, Response, send_from_directory

from settings import ROOT

ASSETS = ROOT / "var" / "graphiql"
FILES = ("react.production.min.js", "react-dom.production.min.js", "graphiql.min.js", "graphiql.min.css")
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop GraphQL</title>
<link rel="stylesheet" href="/graphql/assets/graphiql.min.css"></head>
<body style="margin:0"><div id="graphiql" style="height:100vh"></div>
<script src="/graphql/assets/react.production.min.js"></script>
<script src="/graphql/assets/react-dom.production.min.js"></script>
<script src="/graphql/assets/graphiql.min.js"></script>
<script>
const fetcher = GraphiQL.createFetcher({url: "/graphql"});
ReactDOM.createRoot(document.getElementById("graphiql")).render(
  React.createElement(GraphiQL, {fetcher, defaultEditorToolsVisibility: true, defaultQuery: [
    "{", "  products(first: 5) {", "    nodes { name variants { sku price } }", "    pageInfo { endCursor }",
    "  }", "}", ""].join("\\n")}));
</script></body></html>
"""
MISSING = "GraphiQL's files are not unpacked: run `make graphiql` (it needs npm).\n"


def register(app: Flask) -> None:
    """Add the page and its assets."""
    def page():
        if not all((ASSETS / name).is_file() for name in FILES):
            return Response(MISSING, status=503, mimetype="text/plain")
        return Response(PAGE, mimetype="text/html")

    app.add_url_rule("/graphql/ide", "graphql_ide", page)
    names = ", ".join(f'"{name}"' for name in FILES)
    app.add_url_rule(f"/graphql/assets/<any({names}):filename>", "graphql_assets",
                     lambda filename: send_from_directory(ASSETS, filename, max_age=86400))
