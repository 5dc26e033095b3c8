// placeholder until proxy/ lands
int main() { return 0; }
