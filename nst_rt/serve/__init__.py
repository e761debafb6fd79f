"""``nst-rt serve``: a local web page and HTTP API over the pipeline (the ``web`` extra).

``jobs`` holds the queue and its one worker thread, ``options`` turns a JSON object into ``Options`` (and
describes them for the page), ``limits`` what one job may cost, ``uploads`` reads and checks a job request,
``pictures`` keeps and decodes its pictures, ``examples`` finds the example pictures, ``guard`` refuses other
sites, ``refused`` is the 4xx answer, ``api`` the routes, ``app`` builds the Starlette application;
``static/`` is the page.
"""
