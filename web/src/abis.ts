// Contract ABIs, copied at build time from the forge artifacts (see build.mjs).
import type { Abi } from 'viem';
import { modelRegistryAbi, settlementAbi, stakingAbi, taskManagerAbi, tokenAbi } from 'deepnode:abis';

export { modelRegistryAbi, settlementAbi, stakingAbi, taskManagerAbi, tokenAbi };

/** Every custom error the page may meet, to decode revert data whichever contract produced it. */
export const allErrorsAbi: Abi = [...stakingAbi, ...tokenAbi, ...modelRegistryAbi, ...taskManagerAbi, ...settlementAbi].filter(
  (item) => item.type === 'error',
);
