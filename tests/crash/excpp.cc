// excpp.cc - C++ exceptions under the shim (libunwind is loaded privately
// and must never take over the C++ runtime's unwinder), and a crash in a
// C++ method for symbol demangling.
//
//   excpp throw    throw and catch 1000 times through several frames;
//                  prints "caught 1000" and exits 0
//   excpp crash    NULL write in shapes::Widget::explode(int)
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

int *volatile crd_test_null = nullptr; // not provably null: the store stays

namespace shapes {
struct Widget {
	int size = 0;
	__attribute__((noinline)) void explode(int n)
	{
		*crd_test_null = n + size;
		size++;
	}
};
} // namespace shapes

__attribute__((noinline)) static void thrower(int i)
{
	if (i >= 0)
		throw std::runtime_error("boom " + std::to_string(i));
}

__attribute__((noinline)) static int middle(int i)
{
	std::string keep = "frame";
	thrower(i);
	return (int)keep.size();
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "crash")) {
		shapes::Widget w;
		w.explode(1);
		return 0;
	}
	int caught = 0;
	for (int i = 0; i < 1000; i++) {
		try {
			middle(i);
		} catch (const std::runtime_error &e) {
			if (!strncmp(e.what(), "boom ", 5))
				caught++;
		}
	}
	std::printf("caught %d\n", caught);
	return caught == 1000 ? 0 : 1;
}
