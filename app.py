"""crossmodal: cross-modal retrieval explorer (run with ``streamlit run app.py``).

Pages live in ``app_pages/``, not ``pages/``: Streamlit treats a ``pages/`` folder as a v1
multipage app until ``st.navigation`` has run once in the server process, so a fresh server
opened at ``/explorer`` would run that page alone (no sidebar choices, no wide layout).

The sidebar holds the choices every page shares (dataset, label that defines relevance,
modality pair); the pages read them from ``st.session_state`` through ``app_pages/_shared.py``.
When the server starts, temporaries left by killed writes are removed (once per server).
"""

import streamlit as st

st.set_page_config(page_title="crossmodal", page_icon=":material/join_inner:", layout="wide")

from app_pages import _shared  # noqa: E402 - after set_page_config
from crossmodal_core import store  # noqa: E402


@st.cache_resource(show_spinner=False)
def _clean_stale_temporaries() -> int:
    """Once per server: remove what killed writes (an upload, a training) left behind."""
    return len(store.clean_stale_temporaries())


_clean_stale_temporaries()

navigation = st.navigation([
    st.Page("app_pages/home.py", title="Home: data, models, results", icon=":material/home:", default=True),
    st.Page("app_pages/explorer.py", title="Embedding explorer", icon=":material/scatter_plot:"),
    st.Page("app_pages/retrieval.py", title="Retrieval", icon=":material/search:"),
    st.Page("app_pages/alignment.py", title="Alignment (music)", icon=":material/queue_music:"),
])
_shared.sidebar()
navigation.run()
