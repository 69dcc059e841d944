/**
 * Simulated platform roots carry this organisation name. Verifiers recognise it to say
 * "simulated" instead of "unknown root", and accept it only when told to trust that root.
 */
export const SIMULATED_ORG = "cleanroom-simulated";
