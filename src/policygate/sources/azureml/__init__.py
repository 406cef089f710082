"""Azure Machine Learning and Azure AI Foundry projects -> evidence parts (source.py says how).

The package's seams: ``clients`` builds the SDK clients, ``source`` collects, ``mapping`` turns what
the SDK answered into evidence fields (pure), ``foundry`` reads a Foundry project's deployments,
``uris`` parses Azure ML asset references, ``artifacts`` hashes a model's files, ``transport`` keeps
every request within the collection's budget and ``guard`` names a failed call.
"""

from policygate.sources.azureml.source import AzureMLSource

__all__ = ["AzureMLSource"]
