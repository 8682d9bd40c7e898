"""kizuna services: each a faust worker (`python -m services.<name>`); none imports another."""
