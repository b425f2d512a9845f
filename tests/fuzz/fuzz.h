/* The libFuzzer entry point every target in tests/fuzz/ defines. With clang and -fsanitize=fuzzer it is
 * driven by libFuzzer (tests/fuzz/run.sh); linked with replay.c it is a normal test that feeds it the
 * seed corpus and every kept regression (make check, ASan, valgrind). A target must be deterministic,
 * free everything it allocates, and abort() when one of its invariants does not hold. */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant that does not hold: report it and abort, so that libFuzzer keeps the input. */
#define FUZZ_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
