"""kizuna services: each one a faust worker (`python -m services.<name>`); they never import each other."""
