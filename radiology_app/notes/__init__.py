"""Clinical notes: loading (UTF-8 / GB18030) and fact extraction in English and Chinese.

Fact extraction (:func:`radiology_app.notes.facts.extract_facts`) is rule-based: regular expressions
for the triggers of each fact plus a NegEx/ConText-style assertion step (negation and uncertainty
cues scoped to the clause, post-cues such as "Fever: no" or "（-）", review-of-systems markers, and
suppression of statements about relatives). Every value keeps the character span it came from.

Why no NLP library:

* English: negspacy / medspaCy need spaCy plus a downloaded language model; nothing may be downloaded
  at run time here, and the facts we need are a closed list whose triggers are short phrases. A
  small NegEx scope engine (``_engine.py``) is auditable, needs no model, takes about 2 ms per note
  on one CPU core (0.5 s for a 56,000-character text), and behaves identically everywhere.
* Chinese: jieba (last release January 2020, so unmaintained) would add a 20 MB dictionary and
  segmentation errors on clinical terms (它会把 "痰中带血" 或 "慢阻肺" 切碎), while the cues we need
  (否认, 无, 未, 不伴, （-）) are character sequences whose scope is bounded by ，。； — clause-bounded
  matching needs no word segmentation.

Measured on the labelled corpus in ``tests/data/notes`` (run ``radiology-app evaluate-notes``): per-fact
precision and recall; the corpus README states how it was written and what the numbers mean.
"""
