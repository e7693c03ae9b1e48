"""Federated training across hospitals on Flower (``flwr``): the run's model kind trained at each site
through the runner, aggregated by a Flower strategy, only parameters on the wire. ``app``: the Flower
ServerApp/ClientApp; ``server``: rounds, checkpoints, bundle; ``client``: a site's local round; ``sites``:
site configs and their checks; ``privacy``: SecAgg+ and DP; ``wire``: what the server sends and receives;
``deploy``: SuperLink/SuperNodes/``flwr run``; ``simulate``: Flower's simulation engine."""
