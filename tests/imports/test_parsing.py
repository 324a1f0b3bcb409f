"""Reading feeds and checking where files and images may come from: parsing only, no services."""

import io
import threading
from dataclasses import replace

import pytest

from imports import images, inboxes
from imports.reports import neutralise

pytestmark = pytest.mark.pure


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.png", "gopher://x/", "http://127.0.0.1/a.png",
                                 "http://10.0.0.1/a.png", "http://169.254.169.254/latest/meta-data", "http://[::1]/a",
                                 "http://localhost/a.png", "http:///nohost"])
def test_image_urls_that_could_reach_inside_are_refused(url):
    with pytest.raises(images.ImageRefused):
        images.check_url(url)


def test_inbox_locations(settings):
    configured = replace(settings, IMPORT_INBOXES="sftp://merch:secret@h.example:2222/srv/in, s3://feeds/in,"
                                                  "/var/in?policy=all_or_nothing")
    names = [(i.name, i.policy) for i in inboxes.configured_inboxes(configured)]
    assert names == [("sftp://merch@h.example:2222/srv/in", "partial"), ("s3://feeds/in", "partial"),
                     ("/var/in", "all_or_nothing")]
    assert inboxes.resolve_source(configured, "s3://feeds/in/a.csv")[1] == "a.csv"
    assert inboxes.resolve_source(configured, "sftp:///srv/in/b.xml")[1] == "b.xml"
    for outside in ("s3://other/in/a.csv", "sftp:///etc/passwd", "http://x/in/a.csv"):
        with pytest.raises(inboxes.LocationError):
            inboxes.resolve_source(configured, outside)
    with pytest.raises(inboxes.LocationError):
        inboxes.parse_location("s3://b/in?policy=sometimes")


def test_csv_cells_that_would_be_formulas_are_neutralised():
    assert [neutralise(v) for v in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "ok", 5)] == [
        "'=1+1", "'+1", "'-1", "'@SUM(A1)", "'\tx", "'\rx", "ok", 5]


@pytest.mark.parametrize("name", ["catalog.csv", "catalog.xml", "catalog.json", "catalog.ndjson"])
def test_skipped_chunks_come_back_as_none_and_the_rest_keep_their_row_numbers(name):
    from imports.feed import format_of, read_feed
    from tests.imports.conftest import DATA

    def chunks(skip=frozenset()):
        with (DATA / name).open("rb") as stream:
            return [None if c is None else c.frame["row_no"].tolist()
                    for c in read_feed(stream, format_of(name), 1, skip)]

    every = chunks()
    assert len(every) >= 2 and every[0] == [2 if name.endswith(".csv") else 1]
    assert chunks(frozenset({0})) == [None, *every[1:]]


def test_read_ahead_keeps_the_order_raises_where_reading_failed_and_stops_when_left():
    from imports.readahead import ReadAhead

    def failing():
        yield from (1, 2)
        raise ValueError("line 3 is broken")

    with ReadAhead(iter(range(50)), depth=2) as items:
        assert list(items) == list(range(50))
    seen = []
    with pytest.raises(ValueError, match="line 3"), ReadAhead(failing()) as items:
        seen.extend(items)
    assert seen == [1, 2]
    read = []
    endless = (read.append(n) or n for n in range(10**9))
    with ReadAhead(endless) as items:
        assert next(iter(items)) == 0
    count = len(read)
    assert count <= 3  # the one taken, one queued, one waiting to be
    assert not any(t.name == "feed-read-ahead" and t.is_alive() for t in threading.enumerate())


def test_a_chunk_read_for_its_skus_alone_rebuilds_the_register_as_a_whole_read():
    """What a resumed scan keeps of the chunks already checked: the same SKUs on the same records, for a file
    with stripped and formula-quoted SKUs, blank lines, a line with too many fields and a duplicate."""
    from imports.feed import read_feed
    from imports.validate import SeenSkus, remember

    feed = (b"sku,product_handle,product_name,price,currency,stock\n"
            b" A-1 ,h,n,1,EUR,1\n"
            b"\n"
            b"'=B,h,n,1,EUR,1\n"
            b"C,h,n,1,EUR,1,extra\n"
            b",h,no sku,1,EUR,1\n"
            b"D,h,n,1,EUR,1\n"
            b"A-1,h,again,1,EUR,1\n"
            b"\"E\nF\",h,n,1,EUR,1\n")

    def register(**options):
        seen = SeenSkus()
        for chunk in read_feed(io.BytesIO(feed), "csv", 2, **options):
            remember(chunk.frame, seen)
        return seen

    whole = register()
    assert whole == {"A-1": 2, "=B": 4, "D": 7, "E\nF": 9}
    assert register(skus_only=frozenset(range(10))) == whole
    assert register(skus_only=frozenset({1, 3})) == whole


def test_cells_are_stripped_of_whitespace_at_either_end_and_a_column_without_any_is_left_as_it_is():
    import pandas as pd

    from imports.feed import _stripped

    column = pd.Series(["a", "b c", "", "x\u00a0y"])
    assert _stripped(column) is column
    for edge in (" a", "a ", "\ta", "a\n", "\u00a0a", "a\u2003", " ", "\u3000", "\x0ba\x1c"):
        assert _stripped(pd.Series(["ok", edge, ""])).tolist() == ["ok", edge.strip(), ""], repr(edge)
