"""What the Streamlit pages need, without Streamlit: datasets, trained models, projections,
retrieval views, media and results tables.

The pages stay thin: they read the user's choices, call these functions (cached with
``st.cache_data`` / ``st.cache_resource``) and draw. Nothing here imports Streamlit, and
nothing here trains or projects unless a page asks (buttons only).

- :mod:`.datasets` -- the catalog's datasets (:mod:`crossmodal_core.data.catalog`, the one id
  scheme), uploads, label / view choices, item descriptions, works of the music dataset;
- :mod:`.models` -- the one model store (:mod:`crossmodal_core.models.trained`) per dataset
  and modality pair, and "train missing models";
- :mod:`.panels` -- the explorer's 2-D panels and the retrieval views;
- :mod:`.media` -- audio, engraved score and the highlighting player of one item;
- :mod:`.images` -- the score-image view's rasters as PNG thumbnails;
- :mod:`.results` -- the reference results and the user's own runs, in the paper's layout,
  and its downloads.
"""

from crossmodal_core import store
from crossmodal_core.appdata.datasets import (FILE_SUFFIXES, PAIR_LABEL, AppDataset, DatasetEntry, find_entry,
                                              flat_views, item_details, item_text, label_choices, labels_for,
                                              list_datasets, load_dataset, save_upload, split_indices,
                                              view_pairs, work_title, works, score_folders, build_from_scores)
from crossmodal_core.appdata.media import audio_file, audio_wav, has_media, player_html, score_svg
from crossmodal_core.appdata.images import decode_png, item_png, raster, raster_png, raster_views, score_image_view
from crossmodal_core.appdata.models import (DEFAULT_MODELS, ORIGINAL, ORIGINAL_TITLE, TrainedModel,
                                            default_models, find_trained, list_trained, load_embeddings,
                                            load_model_object, missing_models, model_names, model_params,
                                            model_title, model_views, train_missing, train_model)
from crossmodal_core.appdata.panels import (PanelData, RetrievalView, all_query_ap, original_view,
                                            compute_panel_projection,
                                            error_analysis, has_panel_projection, panel_matrices, panel_projection,
                                            pr_curve, query_results, retrieval_view, segment_similarity_matrix,
                                            worst_query_examples)
from crossmodal_core.appdata.results import (TABLE_DOWNLOADS, PaperTable, hamming_table, load_documents, load_results,
                                             paired_tables, paper_table, results_signature, results_table)
from crossmodal_core.appdata.panels import (PanelDrawing, drawing_notice, highlight_positions, plan_drawing,
                                            selection_rows)

__all__ = [
    "store", "FILE_SUFFIXES", "PAIR_LABEL", "AppDataset", "DatasetEntry", "find_entry", "flat_views",
    "item_details", "item_text", "label_choices", "labels_for", "list_datasets", "load_dataset", "save_upload",
    "split_indices", "view_pairs", "work_title", "works", "score_folders", "build_from_scores", "audio_file", "audio_wav", "has_media", "player_html",
    "score_svg", "DEFAULT_MODELS", "ORIGINAL", "ORIGINAL_TITLE", "TrainedModel", "default_models", "find_trained",
    "list_trained", "load_embeddings", "load_model_object", "missing_models", "model_names", "model_params",
    "model_title", "model_views", "train_missing", "train_model", "PanelData", "RetrievalView", "all_query_ap",
    "compute_panel_projection", "error_analysis", "has_panel_projection", "panel_matrices", "panel_projection",
    "pr_curve", "query_results", "retrieval_view", "segment_similarity_matrix", "load_results", "load_documents",
    "paper_table", "PaperTable", "results_table", "hamming_table", "paired_tables", "results_signature", "TABLE_DOWNLOADS", "worst_query_examples",
    "PanelDrawing", "drawing_notice", "highlight_positions", "plan_drawing", "selection_rows",
    "decode_png", "item_png", "raster", "raster_png", "raster_views", "score_image_view", "original_view",
]
