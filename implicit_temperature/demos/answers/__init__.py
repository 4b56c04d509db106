"""The answers demo: a small shipped model answering one-digit additions, served over HTTP.

* :mod:`.task`: the questions and the model's designed answer law;
* :func:`load_answers_model`: the shipped model (a CALM, ``scripts/train_answers.py``) and its
  tokenizer; ``itemp serve answers`` / ``itemp sample answers`` resolve the name ``answers``;
* ``itemp demo answers`` (:mod:`.demo`): answer-level temperature through the endpoint adapter.
"""

from .model import answers_model_record, load_answers_model

__all__ = ["answers_model_record", "load_answers_model"]
