"""crossmodal: cross-modal retrieval explorer (run with ``streamlit run app.py``).

Pages live in ``app_pages/``, not ``pages/``: Streamlit treats a ``pages/`` folder as a v1
multipage app until ``st.navigation`` has run once in the server process, so a fresh server
opened at ``/explorer`` would run that page alone (no sidebar choices, no wide layout).

The sidebar holds the choices every page shares (dataset, label that defines relevance,
modality pair); the pages read them from ``st.session_state`` through ``app_pages/_shared.py``.
"""

import streamlit as st

st.set_page_config(page_title="crossmodal", page_icon=":material/join_inner:", layout="wide")

from app_pages import _shared  # noqa: E402 - after set_page_config

navigation = st.navigation([
    st.Page("app_pages/home.py", title="Home: data, models, results", icon=":material/home:", default=True),
    st.Page("app_pages/explorer.py", title="Embedding explorer", icon=":material/scatter_plot:"),
    st.Page("app_pages/retrieval.py", title="Retrieval", icon=":material/search:"),
    st.Page("app_pages/alignment.py", title="Alignment (music)", icon=":material/queue_music:"),
])
_shared.sidebar()
navigation.run()
