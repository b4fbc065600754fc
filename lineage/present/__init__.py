"""Presenting answers to people: report documents, their formats, and the HTML data map.

- ``reports``   the documents the answers print (title, facts, tables), shared by the CLI and the demo
- ``formats``   a document as Markdown, JSON or CSV
- ``datamap``   the self-contained HTML page of flows; its page lives in ``templates/``
"""
