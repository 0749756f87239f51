// SPDX-License-Identifier: MIT
/*
 * t5_throw.cc - C++ exceptions, for libstdc++'s USDT probes (t5001).
 *
 *   t5_throw N      N throws: an std::runtime_error in even rounds, a
 *                   t5_error in odd ones; round 1's is caught, rethrown and
 *                   caught again. Prints "throws T rethrows R handlers H"
 *                   (H: catch blocks entered) at the end
 *   t5_throw loop   a round every 20 ms forever (for sonde list usdt -p)
 *
 * libstdc++ fires libstdcxx:throw (object, type_info) in __cxa_throw,
 * libstdcxx:catch when a handler is found and libstdcxx:rethrow in
 * __cxa_rethrow.
 */
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <stdexcept>

struct t5_error {
	int round;
};

__attribute__((noinline)) static void thrower(int k)
{
	if (k % 2)
		throw t5_error{k};
	throw std::runtime_error("round");
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 0, throws = 0, rethrows = 0, handlers = 0;
	bool loop = argc > 1 && !strcmp(argv[1], "loop");

	for (int k = 0; loop || k < n; k++) {
		try {
			try {
				throws++;
				thrower(k);
			} catch (const t5_error &e) {
				handlers++;
				if (e.round != 1)
					continue;
				rethrows++;
				throw;
			}
		} catch (const std::runtime_error &) {
			handlers++;
		} catch (const t5_error &) {
			handlers++;
		}
		if (loop) {
			struct timespec ts = {0, 20 * 1000 * 1000};

			nanosleep(&ts, nullptr);
		}
	}
	printf("throws %d rethrows %d handlers %d\n", throws, rethrows, handlers);
	return 0;
}
