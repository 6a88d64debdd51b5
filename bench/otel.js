// bench/otel.js - OpenTelemetry JS zero-code setup, the peer `make bench`
// compares cruddur with: node --require bench/otel.js bench/server.js, with
// NODE_PATH=build/bench-node/node_modules. @opentelemetry/sdk-node with
// every auto-instrumentation (their defaults), OTLP/HTTP protobuf exporter,
// BatchSpanProcessor with its defaults, 100% sampling (parentbased_always_on).
// Endpoint, sampler, resource detectors: the standard OTEL_* variables.
'use strict';
const { NodeSDK } = require('@opentelemetry/sdk-node');
const { getNodeAutoInstrumentations } = require('@opentelemetry/auto-instrumentations-node');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');

const sdk = new NodeSDK({
  traceExporter: new OTLPTraceExporter(),
  instrumentations: [getNodeAutoInstrumentations()],
});
sdk.start();
global.__benchOtelShutdown = () => sdk.shutdown();
