export { startBroker, type BrokerOptions, type RunningBroker } from './broker-server.js';
