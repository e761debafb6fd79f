"""``nst-rt serve``: a local web page and HTTP API over the pipeline (the ``web`` extra).

``jobs`` holds the queue and its one worker thread, ``options`` turns a JSON object into ``Options`` (and
describes them for the page), ``uploads`` reads and checks a job request, ``examples`` finds the example
pictures, ``api`` the routes, ``app`` builds the Starlette application; ``static/`` is the page.
"""
