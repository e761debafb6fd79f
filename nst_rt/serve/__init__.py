"""``nst-rt serve``: a local web page and HTTP API over the pipeline (the ``web`` extra).

``jobs`` holds the queue and its one worker thread, ``options`` turns a JSON object into ``Options``,
``api`` the routes, ``app`` builds the Starlette application; ``static/`` is the page.
"""
