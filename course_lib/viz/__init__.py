"""Widgets (ipywidgets + plotly ``FigureWidget``) and static figures.

A widget is a view over a model object (a ZooKeeper ensemble, a simulated cluster, a
detector): its buttons call the model's public methods, which code can call too, and
live updates run as an asyncio task started by a button, never a blocking loop.
"""
