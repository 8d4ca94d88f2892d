/* bcryptprimitives.dll for Wine 8.0, which lacks it: Go's runtime (1.22
   and later) loads it on Windows for ProcessPrng, and stops without it.
   Windows 10 and later have the real one. Built by windows_test.go with
   x86_64-w64-mingw32-gcc; test support only. */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	return BCryptGenRandom(NULL, data, (ULONG)len, BCRYPT_USE_SYSTEM_PREFERRED_RNG) == 0;
}
