"""MQTT collector: aiomqtt subscriber, topic maps as data, payload decoders, glue.

`MqttCollector(broker, devices).run(emit)` is the entry point; see collector.py.
"""
