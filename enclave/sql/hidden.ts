/** Column and alias names the enclave adds to approved SQL; approved SQL may not use the prefix. */
export const HIDDEN_PREFIX = "__cleanroom";
