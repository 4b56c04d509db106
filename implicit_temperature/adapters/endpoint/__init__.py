"""Endpoint adapter: answer-level temperature for any OpenAI-compatible LLM endpoint.

* :class:`Endpoint`: the model object (base URL, model name, API key);
* :class:`EndpointAdapter` (registered as ``endpoint``): completions of one prompt, keyed by the
  answer they give (``final_number``, ``choice_letter``, ``regex:<pattern>``, ...), fetched with
  ``n=`` or concurrent requests, retried with backoff, every one stored before use;
* :class:`DrawStore`: the folder of stored completions; a rerun with the same seed replays them.

Needs ``httpx`` (``pip install 'implicit-temperature[endpoint]'``). See docs/endpoints.md.
"""

from .adapter import EndpointAdapter
from .client import EndpointClient, EndpointError
from .endpoint import Endpoint
from .store import DrawStore, DrawStoreError, default_store_root

__all__ = [
    "DrawStore",
    "DrawStoreError",
    "Endpoint",
    "EndpointAdapter",
    "EndpointClient",
    "EndpointError",
    "default_store_root",
]
