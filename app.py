"""crossmodal: cross-modal retrieval explorer (run with ``streamlit run app.py``).

The sidebar holds the choices every page shares (dataset, label that defines relevance,
modality pair); the pages read them from ``st.session_state`` through ``pages/_shared.py``.
"""

import streamlit as st

st.set_page_config(page_title="crossmodal", page_icon=":material/join_inner:", layout="wide")

from pages import _shared  # noqa: E402 - after set_page_config

navigation = st.navigation([
    st.Page("pages/home.py", title="Home: data, models, results", icon=":material/home:", default=True),
    st.Page("pages/explorer.py", title="Embedding explorer", icon=":material/scatter_plot:"),
    st.Page("pages/retrieval.py", title="Retrieval", icon=":material/search:"),
    st.Page("pages/alignment.py", title="Alignment (music)", icon=":material/queue_music:"),
])
_shared.sidebar()
navigation.run()
