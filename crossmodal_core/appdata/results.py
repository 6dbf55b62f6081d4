"""The results tables the home page shows: the committed reference results
(``assets/results/*.json``) and the user's own ``evaluate`` runs (:func:`store.user_results_dir`),
each row labelled with its ``origin`` (``"reference"`` / ``"yours"``).

The one implementation lives in :mod:`crossmodal_core.report`; the pages import it from here.
"""

from crossmodal_core.report import load_results, poster_table

__all__ = ["load_results", "poster_table"]
