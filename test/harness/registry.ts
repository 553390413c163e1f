// The real docker-registry launcher lives with the local runner's services (one implementation).
export { startRegistry, type Registry, type RegistryOptions } from '../../cli/services/registry.js';
