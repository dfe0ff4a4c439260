"""The app's look: one stylesheet and the footer, applied on every page."""

from __future__ import annotations

import streamlit as st

PRIMARY = "#2563eb"

_CSS = f"""
<style>
#MainMenu, footer[class*="st"], [data-testid="stStatusWidget"] {{ visibility: hidden; }}
.block-container {{ padding-top: 2.2rem; padding-bottom: 5rem; max-width: 1200px; }}
a.cite {{
  display: inline-block; padding: 0 .32em; margin: 0 .06em; border-radius: .35em;
  font-size: .78em; font-weight: 600; line-height: 1.45; vertical-align: .12em;
  background: #e8efff; color: {PRIMARY} !important; text-decoration: none !important;
}}
a.cite:hover {{ background: {PRIMARY}; color: #fff !important; }}
.unsupported {{ color: #8a8f98; text-decoration: underline dotted #d97706; text-underline-offset: 3px; }}
.src-card {{
  border: 1px solid #e3e6ec; border-radius: .6rem; padding: .65rem .85rem; margin: .15rem 0 .35rem 0;
  background: #fbfcfe; scroll-margin-top: 5rem; transition: box-shadow .2s, border-color .2s;
}}
.src-card:target {{ border-color: {PRIMARY}; box-shadow: 0 0 0 3px rgba(37,99,235,.18); background: #fff; }}
.src-head {{ display: flex; gap: .5rem; align-items: baseline; flex-wrap: wrap; margin-bottom: .3rem; }}
.src-n {{
  background: {PRIMARY}; color: #fff; border-radius: .35rem; font-size: .75rem; font-weight: 700;
  padding: 0 .42rem; line-height: 1.4rem;
}}
.src-title {{ font-weight: 600; }}
.src-loc {{ color: #4b5563; font-size: .88rem; }}
.src-kind, .src-warn {{ font-size: .72rem; border-radius: .3rem; padding: 0 .35rem; }}
.src-kind {{ background: #eef2f7; color: #475569; }}
.src-warn {{ background: #fff4e5; color: #b45309; }}
.src-body {{ font-size: .9rem; color: #374151; line-height: 1.55; white-space: pre-wrap; }}
.src-file {{ font-size: .75rem; color: #9ca3af; margin-top: .35rem; }}
[data-testid="stDialog"] [data-testid="stImage"] img {{ border: 1px solid #e3e6ec; border-radius: .4rem; }}
mark {{ background: #fff0a8; padding: 0 .1em; border-radius: .15em; }}
.docent-footer {{
  position: fixed; bottom: .35rem; right: 1rem; font-size: .75rem; color: #9ca3af; z-index: 10;
}}
.docent-brand {{ font-size: 1.35rem; font-weight: 700; letter-spacing: -.01em; }}
.docent-brand span {{ color: {PRIMARY}; }}
.docent-html {{ white-space: pre-line; }}  /* model/document newlines arrive as &#10; (ui/render.py) */
.docent-muted {{ color: #6b7280; font-size: .88rem; }}
.docent-empty {{
  border: 1px dashed #cfd6e3; border-radius: .8rem; padding: 1.6rem 1.4rem; color: #4b5563; background: #fafbfd;
}}
.docent-empty h4 {{ margin: 0 0 .4rem 0; }}
button.docent-open-pdf {{
  border: 1px solid #d0d5dd; background: #fff; border-radius: .5rem; padding: .35rem .8rem;
  font-size: .88rem; cursor: pointer;
}}
button.docent-open-pdf:hover {{ border-color: {PRIMARY}; color: {PRIMARY}; }}
</style>
"""


def apply() -> None:
    st.html(_CSS)


def footer() -> None:
    st.html('<div class="docent-footer">Powered by Qwen</div>')


def empty_state(title: str, body: str) -> None:
    from ui.render import esc, safe_html

    st.markdown(safe_html(f'<div class="docent-empty"><h4>{esc(title)}</h4>{esc(body)}</div>'), unsafe_allow_html=True)
