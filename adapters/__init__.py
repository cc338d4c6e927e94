"""Everything that talks to a system outside caseledger: connectors to legacy silos (inbound,
``adapters.connectors``) and notification channels (outbound, ``adapters.channels``)."""
