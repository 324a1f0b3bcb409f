"""The baseline: a bare Flask app answering a constant JSON body, served exactly like the real one."""

from flask import Flask

app = Flask(__name__)
BODY = {"status": "ok", "items": [], "nextCursor": None}


@app.get("/")
@app.get("/bare")
def constant():
    return BODY
